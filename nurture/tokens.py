"""Signed, opaque tokens for links in emails: unsubscribe, view in browser, tracking.

A token is `base64url(payload) . base64url(HMAC-SHA256(purpose, payload))`.
The purpose is part of what is signed, so an open-pixel token can't be replayed
as an unsubscribe token. Payloads are small JSON objects with short keys; they
carry ids, never an email address, so a forwarded link leaks no personal data.
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

from nurture.errors import NurtureError


class InvalidToken(NurtureError):
    """The link is not valid (altered, truncated or for another purpose)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def _mac(self, purpose: str, body: str) -> str:
        # The one-shot C digest: an email carries five or so signed links.
        digest = hmac.digest(self._key, f"{purpose}:{body}".encode(), "sha256")
        return _b64(digest[:20])

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str) -> dict[str, Any]:
        body, _, mac = token.partition(".")
        if not token.isascii():  # compare_digest raises TypeError on non-ASCII text
            raise InvalidToken()
        if not body or not mac or not hmac.compare_digest(mac, self._mac(purpose, body)):
            raise InvalidToken()
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            raise InvalidToken() from None
        if not isinstance(payload, dict):
            raise InvalidToken()
        return payload
