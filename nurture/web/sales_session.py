"""Sales inbox sessions: the signed cookie, its CSRF token, the forms, the way back.

The session is a cookie signed with the secret key (purpose
``sales-session``) naming who logged in, valid `SESSION_TTL`, and only while
the API key it was opened with is still configured: it carries a MAC of the
key, never the key. The CSRF token is a signature of the session's random id.
`safe_next` keeps the return address after login a path under `/sales`, so
the login page is no open redirect. See `nurture.web.sales` for the pages.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.tokens import InvalidToken, Signer
from nurture.web.bodies import read_body
from nurture.web.context import WebContext

COOKIE = "nurture_sales"
SESSION_TTL = timedelta(hours=12)
#: Largest form accepted (bytes): a reason of MAX_REASON characters fits easily.
MAX_FORM = 64 * 1024


@dataclass(frozen=True)
class SalesSession:
    """A logged-in sales inbox user, from a valid cookie: who, and the CSRF token forms carry."""

    sid: str
    by: str
    csrf: str


def _key_tag(signer: Signer, key: str) -> str:
    """Which API key a session was opened with, without carrying the key: a MAC of it."""
    return signer.sign("sales-key", {"k": key}).rsplit(".", 1)[1][:16]


def open_session(context: WebContext, by: str, key: str, now: datetime) -> str:
    """A signed session cookie value for `by`, logged in with `key`."""
    signer = context.sales_signer()
    payload = {
        "sid": secrets.token_urlsafe(16),
        "by": by,
        "exp": int((now + SESSION_TTL).timestamp()),
        "k": _key_tag(signer, key),
    }
    return signer.sign("sales-session", payload)


def current_session(request: Request, context: WebContext) -> SalesSession | None:
    """The request's valid session, or None (missing, forged, expired, key removed)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    signer = context.sales_signer()
    try:
        payload = signer.verify("sales-session", cookie)
    except InvalidToken:
        return None
    sid, by, expires, tag = (payload.get(k) for k in ("sid", "by", "exp", "k"))
    if not (isinstance(sid, str) and isinstance(by, str) and isinstance(expires, int)):
        return None
    if expires <= clock.now().timestamp():
        return None
    if not any(_key_tag(signer, key) == tag for key in context.settings.api_key_list):
        return None
    return SalesSession(sid, by, signer.sign("sales-csrf", {"sid": sid}))


def csrf_ok(context: WebContext, session: SalesSession, token: str | None) -> bool:
    if not token:
        return False
    try:
        payload = context.sales_signer().verify("sales-csrf", token)
    except InvalidToken:
        return False
    return payload.get("sid") == session.sid


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path under /sales, or /sales."""
    if not value or value_problem(value) or any(c in value for c in "\\\r\n\t"):
        return "/sales"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/"):
        return "/sales"
    if parts.path != "/sales" and not parts.path.startswith("/sales/"):
        return "/sales"
    if parts.path.startswith("/sales/login") or ".." in parts.path:
        return "/sales"
    return value


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form, one value per field (the first)."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise HTTPException(415, "expected a form (application/x-www-form-urlencoded)")
    body = await read_body(request, MAX_FORM)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "malformed form") from None
    return {name: values[0] for name, values in fields.items() if not value_problem(values[0])}
