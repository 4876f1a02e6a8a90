"""API keys for `/v1/*` (ESP webhooks excepted: they prove themselves by signature).

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` and is
compared with every configured key in constant time (digests of equal length,
no early exit), so response timing says nothing about how close a guess was.
With no key configured every call is refused: an API that writes contacts is
never open by default. Keys are never logged nor echoed back.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from nurture.web.context import WebContext, web_context

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`")

NO_KEYS = "no API key is configured on this server: set NURTURE_API_KEYS (comma-separated)"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_matches(given: str, keys: list[str]) -> bool:
    """Whether `given` is one of `keys`, in time independent of where they differ."""
    wanted = _digest(given)
    found = False
    for key in keys:
        found |= hmac.compare_digest(wanted, _digest(key))
    return found


def _refuse(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


def require_api_key(
    context: Annotated[WebContext, Depends(web_context)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> None:
    """FastAPI dependency: 401 unless the request carries a configured API key."""
    keys = context.settings.api_key_list
    if not keys:
        raise _refuse(NO_KEYS)
    given = bearer.credentials if bearer is not None else header
    if not given:
        raise _refuse("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if not key_matches(given, keys):
        raise _refuse("invalid API key")
