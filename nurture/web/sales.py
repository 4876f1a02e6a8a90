"""The sales inbox at `/sales`: server-rendered pages over the handoffs.

People sign in with their account (`nurture.web.sales_login`); the account is
who acts, in the action log by its address. A ``sales`` account sees and acts
on its own handoffs, and may ask for one to go to someone else; a ``lead`` or
``admin`` sees them all, acts on any, and gives one to someone else. Another's
handoff is a 403 for a ``sales`` account, checked again under the row lock
when acting. Every form that changes something carries a CSRF token, a
signature of the session's id, checked before anything is done: 403
otherwise. Pages are Jinja templates with autoescaping, a little CSS served
from here, no script at all (the CSP forbids any), never cached nor framed;
times are shown in the account's timezone.

Not signed in: redirected to the login page, which then returns to the
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
from nurture.lifecycle.accounts import may_act_on, sees_all
from nurture.lifecycle.handoff.actions import HandoffConflict, HandoffNotFound
from nurture.lifecycle.handoff.readers import INBOX_LANGUAGE, timezone_for
from nurture.store.accounts import active_accounts, all_accounts
from nurture.store.handoffs import owners as handoff_owners
from nurture.web import inbox
from nurture.web.context import WebContext, web_context
from nurture.web.sales_session import (
    SalesSession,
    csrf_ok,
    current_session,
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
    "reassigned": "Réattribué",
    "reassignment_requested": "Réattribution demandée",
}
DONE = {
    "accept": "Lead accepté.",
    "reject": "Lead renvoyé en nurturing.",
    "reopen": "Transfert rouvert.",
    "reassign": "Transfert réattribué.",
    "request": "Demande de réattribution envoyée.",
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
    """The reader's timezone: the signed-in account's (read with its session), else
    the project's (`timezone_for`)."""
    if session is not None:
        return session.person.timezone
    return timezone_for(None, context.engine.project.config, None)


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
    everyone = sees_all(session.person)
    chosen = inbox.as_status(status) or "open"
    if not everyone:
        owner = session.person.email
    else:
        owner = owner.strip() if owner and not value_problem(owner) else None
    now = clock.now()
    with context.engine.sessions() as db:
        items = inbox.list_handoffs(db, now, chosen, owner, limit=500)
        numbers = inbox.counts(db, now, owner)
        owners = handoff_owners(db) if everyone else []
        people = _people(db)
    return render(
        context,
        "sales/inbox.html",
        session=session,
        status=chosen,
        owner=owner if everyone else None,
        owners=owners,
        everyone=everyone,
        items=items,
        counts=numbers,
        people=people,
    )


def _people(db: Any) -> dict[str, str]:
    """Every account's name by address: the pages name people, the log keeps addresses."""
    return {account.email: account.name for account in all_accounts(db)}


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


def _not_yours(context: WebContext, session: SalesSession) -> HTMLResponse:
    return render(
        context,
        "sales/error.html",
        403,
        session=session,
        title="Transfert attribué à quelqu'un d'autre",
        message="Ce transfert ne vous est pas attribué : seul·e son ou sa responsable, ou "
        "un·e manager, peut le traiter.",
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
    if not may_act_on(session.person, handoff["owner"]):
        return _not_yours(context, session)
    everyone = sees_all(session.person)
    with context.engine.sessions() as db:
        people = _people(db)
        assignees = [(a.email, a.name) for a in active_accounts(db)] if everyone else []
    return render(
        context,
        "sales/handoff.html",
        status_code,
        session=session,
        h=handoff,
        error=error,
        done=DONE.get(done or ""),
        reason=reason,
        everyone=everyone,
        people=people,
        assignees=assignees,
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
    """Accept, reject (a reason required), reopen, reassign (leads) or ask for a
    reassignment (a reason required); then back to the page (303)."""
    number = _parse_id(handoff_id)
    session = await run_in_threadpool(current_session, request, context)
    if session is None:
        return _login_redirect(request, f"/sales/handoffs/{number}" if number else "/sales")
    form = await read_form(request)
    if not csrf_ok(context, session, form.get("csrf")):
        return _forbidden(context)
    chosen = inbox.as_action(action)
    if number is None or chosen is None:
        return _not_found(context, session)
    reason = form.get("reason", "").strip()
    to = form.get("to", "").strip().lower()
    return await run_in_threadpool(_decide, context, session, number, chosen, reason, to)


def _decide(
    context: WebContext,
    session: SalesSession,
    number: int,
    action: inbox.Action,
    reason: str,
    to: str,
) -> Response:
    everyone = sees_all(session.person)
    if action == "reassign" and not everyone:
        return _not_yours(context, session)
    if action in ("reject", "request") and not reason:
        message = (
            "Indiquez pourquoi ce lead n'est pas prêt."
            if action == "reject"
            else "Indiquez pourquoi ce lead devrait aller à quelqu'un d'autre."
        )
        return _detail_page(context, session, number, 422, error=message)
    if len(reason) > inbox.MAX_REASON:
        return _detail_page(
            context,
            session,
            number,
            422,
            error=f"Raison trop longue ({inbox.MAX_REASON} caractères au plus).",
            reason=reason,
        )
    if action == "reassign":
        with context.engine.sessions() as db:
            known = {a.email for a in active_accounts(db)}
        if to not in known:
            return _detail_page(context, session, number, 422, error="Choisissez un compte actif.")
    try:
        inbox.act(
            context.engine,
            number,
            action,
            session.by,
            reason or None,
            clock.now(),
            only_owner=None if everyone else session.person.email,
            to=to or None,
        )
    except HandoffNotFound:
        return _not_found(context, session)
    except inbox.NotYours:
        return _not_yours(context, session)
    except HandoffConflict as exc:
        return _detail_page(context, session, number, 409, error=str(exc))
    return RedirectResponse(f"/sales/handoffs/{number}?done={action}", 303, headers=HEADERS)
