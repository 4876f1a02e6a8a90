"""Amazon SNS's message signatures, and the certificates they are checked against.

SNS signs each message (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA)
over a canonical text of its fields, with the key of the certificate at
`SigningCertURL`. That URL must be one of SNS's own
(``https://sns.<region>.amazonaws.com/….pem``), or anyone could sign with a
certificate of their own; certificates are fetched once and cached.
Fetching goes through `Fetch` (`http_fetch` by default), so tests hand in a
local stand-in and never reach the internet. Knows nothing of nurture's web
context, so the context can hold a `SnsCertificates`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: GET a URL, its body; raises on failure. `http_fetch` unless a test hands in its own.
Fetch = Callable[[str], bytes]

#: ``sns.<region>.amazonaws.com`` (and the China regions' ``.com.cn``).
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com(?:\.cn)?")
#: The fields each message type signs, in this order (AWS's canonical form).
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsRefused(ValueError):
    """An SNS message that does not verify; the reason says why."""


def http_fetch(url: str) -> bytes:
    """GET `url` (no redirects, 10 s), its body; raises on an error status."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


def is_sns_url(url: object, *, pem: bool) -> bool:
    """An https URL on SNS's own host: a certificate (``….pem``) or an API call (``/?…``)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.username or parts.password or parts.port:
        return False
    if not _SNS_HOST.fullmatch(parts.netloc):
        return False
    if pem:
        return parts.path.endswith(".pem") and not parts.query and not parts.fragment
    return parts.path in ("", "/") and bool(parts.query)


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The text SNS signed for this message (its type's fields, ``Name\\nvalue\\n`` each)."""
    fields = _SIGNED.get(str(message.get("Type")))
    if fields is None:
        raise SnsRefused(f"unknown SNS message type {str(message.get('Type'))[:40]!r}")
    text = ""
    for name in fields:
        value = message.get(name)
        if value is None and name == "Subject":
            continue  # the one optional field
        if not isinstance(value, str):
            raise SnsRefused(f"the SNS message has no {name}")
        text += f"{name}\n{value}\n"
    return text.encode("utf-8", "surrogatepass")


class SnsCertificates:
    """SNS's signing certificates by URL, fetched once and cached (a few per region)."""

    def __init__(self, fetch: Fetch = http_fetch, limit: int = 32) -> None:
        self.fetch = fetch
        self._limit = limit
        self._keys: dict[str, tuple[rsa.RSAPublicKey, datetime]] = {}
        self._lock = threading.Lock()

    def public_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        if not is_sns_url(url, pem=True):
            raise SnsRefused(
                f"SigningCertURL {url[:200]!r} is not https://sns.<region>.amazonaws.com/….pem"
            )
        with self._lock:
            cached = self._keys.get(url)
        if cached is None:
            try:
                certificate = x509.load_pem_x509_certificate(self.fetch(url))
            except (httpx.HTTPError, OSError, ValueError) as exc:
                raise SnsRefused(f"could not load the SNS certificate: {exc}") from None
            key = certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise SnsRefused("the SNS certificate holds no RSA key")
            cached = (key, certificate.not_valid_after_utc)
            with self._lock:
                if len(self._keys) >= self._limit:
                    self._keys.clear()
                self._keys[url] = cached
        key, expires = cached
        if expires < now:
            raise SnsRefused("the SNS certificate has expired")
        return key

    def verify(self, message: Mapping[str, Any], now: datetime) -> None:
        """Raises `SnsRefused` unless SNS signed this message."""
        version = message.get("SignatureVersion")
        digest = _HASHES.get(str(version))
        if digest is None:
            raise SnsRefused(f"unknown SNS SignatureVersion {str(version)[:10]!r}")
        text = string_to_sign(message)
        try:
            signature = base64.b64decode(str(message.get("Signature")), validate=True)
        except binascii.Error:
            raise SnsRefused("the SNS Signature is not base64") from None
        key = self.public_key(str(message.get("SigningCertURL")), now)
        try:
            key.verify(signature, text, padding.PKCS1v15(), digest())
        except InvalidSignature:
            raise SnsRefused("bad SNS signature") from None
