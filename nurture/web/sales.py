"""The sales inbox at `/sales`: server-rendered pages over the handoffs.

People log in with one of the API keys (NURTURE_API_KEYS) and their name or
email address, which is who the action log says acted. The session is a
cookie signed with the secret key (purpose ``sales-session``): HttpOnly,
SameSite=Lax, Secure when the base URL is https, valid `SESSION_TTL`, and
only while the key it was opened with is still configured (removing a key
ends its sessions). Every form that changes something carries a CSRF token,
a signature of the session's random id, checked before anything is done:
403 otherwise. Pages are Jinja templates with autoescaping, a little CSS
served from here, no script at all (the CSP forbids any), never cached nor
framed.

Not logged in: redirected to the login page, which then returns to the
page asked for, only ever a path under `/sales` (no open redirect).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

import nurture.clock as clock
import nurture.readable as readable
from nurture.contacts.values import value_problem
from nurture.lifecycle.handoff.actions import HandoffConflict, HandoffNotFound
from nurture.lifecycle.handoff.readers import INBOX_LANGUAGE, timezone_for
from nurture.store.handoffs import owners as handoff_owners
from nurture.web import inbox
from nurture.web.auth import key_matches
from nurture.web.context import WebContext, web_context
from nurture.web.sales_session import (
    COOKIE,
    SESSION_TTL,
    SalesSession,
    csrf_ok,
    current_session,
    open_session,
    read_form,
    safe_next,
)

router = APIRouter(prefix="/sales", include_in_schema=False)

Context = Annotated[WebContext, Depends(web_context)]


_HERE = Path(__file__).parent
_CSS = (_HERE / "static" / "sales.css").read_bytes()

HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

STATUS_LABELS = {"open": "À traiter", "accepted": "Acceptés", "rejected": "Renvoyés en nurturing"}
STATUS_LABEL = {"open": "À traiter", "accepted": "Accepté", "rejected": "Renvoyé en nurturing"}
TEMPERATURES = {"hot": "Chaud", "warm": "Tiède", "cold": "Froid"}
ACTIONS = {
    "opened": "Transmis aux ventes",
    "accepted": "Accepté",
    "rejected": "Renvoyé en nurturing",
    "reopened": "Rouvert",
    "reminded": "Relance (SLA dépassé)",
    "escalated": "Escaladé",
}
DONE = {
    "accept": "Lead accepté.",
    "reject": "Lead renvoyé en nurturing.",
    "reopen": "Transfert rouvert.",
}


# --- rendering ---------------------------------------------------------------------------


def _duration(seconds: int | float | None) -> str:
    """3 j 4 h, 5 h 10 min, 12 min (absolute value)."""
    if seconds is None:
        return ""
    total = abs(int(seconds)) // 60
    days, rest = divmod(total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} j {hours} h" if hours else f"{days} j"
    if hours:
        return f"{hours} h {minutes:02d}" if minutes else f"{hours} h"
    return f"{minutes} min"


def _rule_label(name: str) -> str:
    """`rule:2:demo.requested` → `demo.requested` (ledger rule keys, for people)."""
    found = re.fullmatch(r"(?:rule|fit):\d+:(.+)", name)
    return found.group(1) if found else name


def _safe_url(value: Any) -> str | None:
    """A link from event data, only if it is plain http(s)."""
    if isinstance(value, str) and urlsplit(value).scheme in {"http", "https"}:
        return value
    return None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    env.filters["safe_url"] = _safe_url
    env.filters["rule_label"] = _rule_label
    env.filters["score"] = readable.score
    env.filters["points"] = readable.points
    env.globals["score_parts"] = readable.score_parts
    env.globals.update(
        STATUS_LABELS=STATUS_LABELS,
        STATUS_LABEL=STATUS_LABEL,
        TEMPERATURES=TEMPERATURES,
        ACTIONS=ACTIONS,
    )
    return env


_env = _environment()


def reader_timezone(context: WebContext, session: SalesSession | None) -> str:
    """The reader's timezone: the signed-in person's (`timezone_for`)."""
    with context.engine.sessions() as db:  # no query is made until accounts need one
        return timezone_for(db, context.engine.project.config, session.by if session else None)


def render(
    context: WebContext,
    template: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    zone = reader_timezone(context, values.get("session"))
    now = clock.now()

    def when(value: Any) -> str:
        """A time in the reader's zone and the inbox's language: ``4 déc. 16:51``."""
        return readable.local_time(value, zone, INBOX_LANGUAGE, now)

    def from_now(value: Any) -> str:
        """``dans 2 jours``, ``il y a 3 heures``."""
        return readable.relative(value, now, INBOX_LANGUAGE)

    body = _env.get_template(template).render(when=when, from_now=from_now, zone=zone, **values)
    return HTMLResponse(body, status_code, headers={**HEADERS, **(headers or {})})


def _login_redirect(request: Request, after: str | None = None) -> RedirectResponse:
    """To the login page, which comes back to `after` (default: this page)."""
    query = f"?{request.url.query}" if request.url.query else ""
    target = after or request.url.path + query
    location = "/sales/login?next=" + quote(safe_next(target), safe="/")
    return RedirectResponse(location, 303, headers=HEADERS)


def _secure(context: WebContext) -> bool:
    return context.settings.base_url.startswith("https://")


# --- login and logout ---------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, context: Context, next: str | None = None) -> Response:
    target = safe_next(next)
    if current_session(request, context) is not None:
        return RedirectResponse(target, 303, headers=HEADERS)
    return render(context, "sales/login.html", next=target, error=None, by="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, context: Context) -> Response:
    form = await read_form(request)
    target = safe_next(form.get("next"))
    by = form.get("by", "").strip()
    keys = context.settings.api_key_list

    def again(error: str, status_code: int) -> HTMLResponse:
        return render(context, "sales/login.html", status_code, next=target, error=error, by=by)

    if not keys:
        return again("Aucune clé d'API n'est configurée sur ce serveur (NURTURE_API_KEYS).", 503)
    if not by or len(by) > inbox.MAX_BY:
        return again("Indiquez votre nom ou votre adresse e-mail.", 422)
    key = form.get("api_key", "")
    if not key or not key_matches(key, keys):
        return again("Clé d'accès invalide.", 401)
    cookie = open_session(context, by, key, clock.now())
    response = RedirectResponse(target, 303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/sales",
        secure=_secure(context),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    session = current_session(request, context)
    if session is None:
        return _login_redirect(request, "/sales")
    form = await read_form(request)
    if not csrf_ok(context, session, form.get("csrf")):
        return _forbidden(context)
    response = RedirectResponse("/sales/login", 303, headers=HEADERS)
    response.delete_cookie(
        COOKIE, path="/sales", secure=_secure(context), httponly=True, samesite="lax"
    )
    return response


def _forbidden(context: WebContext) -> HTMLResponse:
    return render(
        context,
        "sales/error.html",
        403,
        session=None,
        title="Requête refusée",
        message="Le formulaire a expiré ou ne vient pas de cette page. Rechargez la page et "
        "recommencez.",
    )


# --- the inbox --------------------------------------------------------------------------------


@router.get("/sales.css")
def stylesheet() -> Response:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("", response_class=HTMLResponse)
def inbox_page(
    request: Request,
    context: Context,
    status: str = "open",
    owner: str | None = None,
) -> Response:
    session = current_session(request, context)
    if session is None:
        return _login_redirect(request)
    chosen = inbox.as_status(status) or "open"
    owner = owner.strip() if owner and not value_problem(owner) else None
    now = clock.now()
    with context.engine.sessions() as db:
        items = inbox.list_handoffs(db, now, chosen, owner, limit=500)
        numbers = inbox.counts(db, now, owner)
        owners = handoff_owners(db)
    return render(
        context,
        "sales/inbox.html",
        session=session,
        status=chosen,
        owner=owner,
        owners=owners,
        items=items,
        counts=numbers,
    )


def _parse_id(value: str) -> int | None:
    if not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 1 <= number <= inbox.MAX_ID else None


def _not_found(context: WebContext, session: SalesSession) -> HTMLResponse:
    return render(
        context,
        "sales/error.html",
        404,
        session=session,
        title="Transfert introuvable",
        message="Ce transfert n'existe pas (ou plus).",
    )


def _detail_page(
    context: WebContext,
    session: SalesSession,
    handoff_id: int,
    status_code: int = 200,
    error: str | None = None,
    done: str | None = None,
    reason: str = "",
) -> HTMLResponse:
    try:
        handoff = inbox.load(context.engine, handoff_id, clock.now())
    except HandoffNotFound:
        return _not_found(context, session)
    return render(
        context,
        "sales/handoff.html",
        status_code,
        session=session,
        h=handoff,
        error=error,
        done=DONE.get(done or ""),
        reason=reason,
    )


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
def handoff_page(
    handoff_id: str, request: Request, context: Context, done: str | None = None
) -> Response:
    session = current_session(request, context)
    if session is None:
        return _login_redirect(request)
    number = _parse_id(handoff_id)
    if number is None:
        return _not_found(context, session)
    return _detail_page(context, session, number, done=done)


@router.post("/handoffs/{handoff_id}/{action}", response_class=HTMLResponse)
async def handoff_action(
    handoff_id: str, action: str, request: Request, context: Context
) -> Response:
    """Accept, reject (a reason required) or reopen; then back to the page (303)."""
    number = _parse_id(handoff_id)
    session = current_session(request, context)
    if session is None:
        return _login_redirect(request, f"/sales/handoffs/{number}" if number else "/sales")
    form = await read_form(request)
    if not csrf_ok(context, session, form.get("csrf")):
        return _forbidden(context)
    chosen = inbox.as_action(action)
    if number is None or chosen is None:
        return _not_found(context, session)
    reason = form.get("reason", "").strip()
    return await run_in_threadpool(_decide, context, session, number, chosen, reason)


def _decide(
    context: WebContext, session: SalesSession, number: int, action: inbox.Action, reason: str
) -> Response:
    if action == "reject" and not reason:
        return _detail_page(
            context, session, number, 422, error="Indiquez pourquoi ce lead n'est pas prêt."
        )
    if len(reason) > inbox.MAX_REASON:
        return _detail_page(
            context,
            session,
            number,
            422,
            error=f"Raison trop longue ({inbox.MAX_REASON} caractères au plus).",
            reason=reason,
        )
    try:
        inbox.act(context.engine, number, action, session.by, reason or None, clock.now())
    except HandoffNotFound:
        return _not_found(context, session)
    except HandoffConflict as exc:
        return _detail_page(context, session, number, 409, error=str(exc))
    return RedirectResponse(f"/sales/handoffs/{number}?done={action}", 303, headers=HEADERS)
