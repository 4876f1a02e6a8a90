"""DKIM signing of outgoing messages (optional; dkimpy).

Mailbox providers (Gmail, Yahoo, Outlook) want bulk mail DKIM-signed by the
From domain, with the List-Unsubscribe headers inside the signature so a
relay cannot strip or alter the one-click link. The transport pipeline signs
each message after it is built and before its bytes are handed on, so SMTP,
the outbox folder and the capture transport all carry the same signature.

Relaxed/relaxed canonicalisation: relays re-fold headers and trim trailing
whitespace, which would break a "simple" signature. The key is RSA in PEM
(PKCS#1 or PKCS#8); publish its public half as a TXT record at
``<selector>._domainkey.<domain>`` (``v=DKIM1; k=rsa; p=<base64 DER>``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import dkim

from nurture.errors import ConfigurationError

if TYPE_CHECKING:
    from nurture.settings import Settings
    from nurture.transports.mime import BuiltMessage

#: Signed when present. From is mandatory; the List-Unsubscribe pair is what
#: providers check for one-click unsubscribe.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)

_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\Z")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z")
_PROBE = b"From: probe@example.com\r\nTo: probe@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"


class DkimSigner:
    """Signs `BuiltMessage`s for one selector and domain with one private key."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        _check_names(selector, domain)
        self.selector = selector.encode("ascii")
        self.domain = domain.lower().encode("ascii")
        self._key = private_key
        try:  # a bad key must stop the worker at start, not fail every send
            self._sign(_PROBE)
        except Exception as exc:
            raise ConfigurationError(
                "NURTURE_DKIM_PRIVATE_KEY: cannot sign with this key (an RSA private key "
                f"in PEM is expected): {type(exc).__name__}"
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """None when DKIM is not configured; all three settings or none."""
        values = {
            "NURTURE_DKIM_SELECTOR": settings.dkim_selector,
            "NURTURE_DKIM_DOMAIN": settings.dkim_domain,
            "NURTURE_DKIM_PRIVATE_KEY": settings.dkim_private_key,
        }
        given = {name for name, value in values.items() if value}
        if not given:
            return None
        if len(given) < len(values):
            missing = ", ".join(sorted(set(values) - given))
            raise ConfigurationError(f"{missing}: required once DKIM signing is configured")
        assert settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key
        _check_names(settings.dkim_selector, settings.dkim_domain)
        return cls(
            settings.dkim_selector, settings.dkim_domain, load_key(settings.dkim_private_key)
        )

    def sign(self, message: BuiltMessage) -> BuiltMessage:
        """The same message with a DKIM-Signature header first."""
        return replace(message, data=self._sign(message.data) + message.data)

    def _sign(self, data: bytes) -> bytes:
        head = data.split(b"\r\n\r\n", 1)[0]
        present = {name.lower() for name in _HEADER_NAME.findall(head)}
        headers = [h.encode("ascii") for h in SIGNED_HEADERS if h.lower().encode() in present]
        signature: bytes = dkim.sign(
            data,
            self.selector,
            self.domain,
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
            linesep=b"\r\n",
        )
        return signature


def _check_names(selector: str, domain: str) -> None:
    if not _SELECTOR.match(selector):
        raise ConfigurationError(f"NURTURE_DKIM_SELECTOR: not a DKIM selector: {selector!r}")
    if not _DOMAIN.match(domain):
        raise ConfigurationError(f"NURTURE_DKIM_DOMAIN: not a domain name: {domain!r}")


def load_key(value: str) -> bytes:
    """PEM text (``\\n`` escapes allowed, for one-line .env values) or a file path."""
    text = value.strip()
    if "-----BEGIN" in text:
        if "\n" not in text:
            text = text.replace("\\n", "\n")
        return text.encode("ascii") + b"\n"
    path = Path(text).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"NURTURE_DKIM_PRIVATE_KEY: neither PEM text nor a readable file ({exc.strerror})"
        ) from None
