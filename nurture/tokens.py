"""Signed, opaque tokens for links in emails: unsubscribe, view in browser, tracking.

A token is `base64url(payload) . base64url(HMAC-SHA256(purpose, payload))`.
The purpose is part of what is signed, so an open-pixel token can't be replayed
as an unsubscribe token. Payloads are small JSON objects with short keys; they
carry ids, never an email address, so a forwarded link leaks no personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nurture.errors import NurtureError


class InvalidToken(NurtureError):
    """The link is not valid (altered, truncated or for another purpose)."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")
#: `json.dumps(payload, separators=..., sort_keys=True)` without building an
#: encoder per call: an email signs five or so links, a worker sends thousands.
_COMPACT = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and verifies the tokens in links and sales cookies.

    A token is signed for a purpose (`unsubscribe`, `click`, `sales-session`...);
    `verify` refuses it for any other with `InvalidToken`. New tokens are signed
    with `key`; `previous` keys still verify, so the key can be rotated without
    breaking the links in mail already sent (NURTURE_PREVIOUS_SECRET_KEYS).
    """

    def __init__(self, key: str, previous: Sequence[str] = ()) -> None:
        # Keyed once: copying a keyed HMAC skips hashing the key pads per token.
        self._keyed = [
            hmac.new(k.encode("utf-8"), digestmod=hashlib.sha256) for k in (key, *previous)
        ]

    def _mac(self, purpose: str, body: str, keyed: Any = None) -> str:
        mac = (keyed or self._keyed[0]).copy()
        mac.update(f"{purpose}:{body}".encode())
        return _b64(mac.digest()[:20])

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(_COMPACT.encode(payload).encode("utf-8"))
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str) -> dict[str, Any]:
        body, _, mac = token.partition(".")
        if not token.isascii():  # compare_digest raises TypeError on non-ASCII text
            raise InvalidToken()
        if (
            not body
            or not mac
            or not any(
                hmac.compare_digest(mac, self._mac(purpose, body, keyed)) for keyed in self._keyed
            )
        ):
            raise InvalidToken()
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            raise InvalidToken() from None
        if not isinstance(payload, dict):
            raise InvalidToken()
        return payload


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01: how a tracking token carries when it was made (`d`)."""
    return int(moment.timestamp() // 86400)


def expired(payload: dict[str, Any], now: datetime, max_days: int) -> bool:
    """Whether a token made on day `payload["d"]` is older than `max_days` (a token
    from before tokens carried their day never expires)."""
    made = payload.get("d")
    return isinstance(made, int) and day_number(now) - made > max_days
