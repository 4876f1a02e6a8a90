"""Sales inbox sessions: the cookie, its CSRF token, the forms, the way back.

The cookie holds a random token; the session is a row keyed by its hash
(`nurture.lifecycle.signin`), so logging out, disabling the account or
setting its password ends it on the server, and it expires after
`IDLE_TIMEOUT` idle or `SESSION_TTL` in all. The cookie is HttpOnly,
SameSite=Lax, Secure when the base URL is https, scoped to `/sales`. The
CSRF token is a signature (NURTURE_SECRET_KEY, purpose ``sales-csrf``) of
the session's id. `safe_next` keeps the return address after login a path
under `/sales`, so the login page is no open redirect. See
`nurture.web.sales` for the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request, Response

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.lifecycle import signin
from nurture.lifecycle.accounts import Person
from nurture.tokens import InvalidToken
from nurture.web.bodies import read_body
from nurture.web.context import WebContext

COOKIE = "nurture_sales"
SESSION_TTL = signin.SESSION_TTL
#: Largest form accepted (bytes): a reason of MAX_REASON characters fits easily.
MAX_FORM = 64 * 1024


@dataclass(frozen=True)
class SalesSession:
    """A signed-in account, from a live session: who, and the CSRF token forms carry."""

    sid: str
    person: Person
    csrf: str

    @property
    def by(self) -> str:
        """Who acts, in the action log: the account's address."""
        return self.person.email


def current_session(request: Request, context: WebContext) -> SalesSession | None:
    """The request's live session, or None (no cookie, unknown, ended, expired, disabled).

    Reads the database: call it from a worker thread (a plain `def` route, or
    `run_in_threadpool`)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    with context.engine.sessions.begin() as db:
        found = signin.current(db, token, clock.now())
    if found is None:
        return None
    return SalesSession(
        found.id, found.account, context.sales_signer().sign("sales-csrf", {"sid": found.id})
    )


def secure(context: WebContext) -> bool:
    return context.settings.base_url.startswith("https://")


def set_session_cookie(response: Response, context: WebContext, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/sales",
        secure=secure(context),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, context: WebContext) -> None:
    response.delete_cookie(
        COOKIE, path="/sales", secure=secure(context), httponly=True, samesite="lax"
    )


def cross_site(request: Request) -> bool:
    """A form posted from another site (the browser says so): refused before sign-in,
    so no other site can sign a visitor in to an account of its choosing."""
    return request.headers.get("sec-fetch-site") == "cross-site"


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
