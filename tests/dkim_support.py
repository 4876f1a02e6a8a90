"""DKIM keys for tests: a fresh RSA key, and verification against it without DNS.

dkimpy looks the public key up in DNS (``<selector>._domainkey.<domain>``);
`verify` hands it a resolver stub that answers with the test key's record,
exactly as a receiving mail server would find it published.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SELECTOR = "nurture2026"
DOMAIN = "example.com"


@dataclass(frozen=True)
class DkimKey:
    private_pem: str
    record: bytes  # the TXT record: v=DKIM1; k=rsa; p=…

    def verify(self, data: bytes) -> bool:
        asked: list[bytes] = []

        def dns(name: bytes, timeout: int = 5) -> bytes:
            asked.append(name)
            wanted = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
            return self.record if name in (wanted, wanted[:-1]) else b""

        ok = bool(dkim.verify(data, dnsfunc=dns))
        assert asked, "the signature was not checked against the published key"
        return ok


@cache
def dkim_key() -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
