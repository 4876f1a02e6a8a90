"""`/sales/accounts`: an admin manages the sales accounts from the inbox.

What `nurture users` does on the server, for an ``admin`` account: list the
accounts and their state, add one, give someone a way back in (a reset: the
lockout lifted, a one-time link shown once on the page to pass on), unlock,
disable (the person's sessions end at once) and enable. Every form carries the
session's CSRF token; any other role gets a 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

import nurture.clock as clock
from nurture.lifecycle import accounts
from nurture.lifecycle.accounts import AccountError, manages_accounts
from nurture.store.accounts import all_accounts, throttle
from nurture.web.context import WebContext, web_context
from nurture.web.sales import _forbidden, _login_redirect, render
from nurture.web.sales_session import SalesSession, csrf_ok, current_session, read_form

router = APIRouter(prefix="/sales/accounts", include_in_schema=False)

Context = Annotated[WebContext, Depends(web_context)]

DONE = {
    "add": "Compte créé : transmettez-lui ce lien pour choisir son mot de passe.",
    "reset": "Lien de réinitialisation créé (le verrouillage est levé) : transmettez-le.",
    "unlock": "Compte déverrouillé.",
    "disable": "Compte désactivé ; ses sessions sont terminées.",
    "enable": "Compte réactivé.",
}


def _rows(context: WebContext) -> list[dict[str, Any]]:
    with context.engine.sessions() as db:
        rows = []
        for account in all_accounts(db):
            held = throttle(db, accounts.throttle_key(account.email))
            state = (
                "désactivé"
                if account.disabled_at
                else "verrouillé"
                if held is not None and held.locked_at
                else "sans mot de passe"
                if not account.password_hash
                else "actif"
            )
            rows.append(
                {
                    "email": account.email,
                    "name": account.name,
                    "role": account.role,
                    "timezone": account.timezone,
                    "state": state,
                    "disabled": account.disabled_at is not None,
                }
            )
        return rows


def _page(
    context: WebContext,
    session: SalesSession,
    status_code: int = 200,
    done: str | None = None,
    link: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    return render(
        context,
        "sales/accounts.html",
        status_code,
        session=session,
        rows=_rows(context),
        roles=accounts.ROLES,
        default_zone=context.engine.project.config.sending.default_timezone,
        done=DONE.get(done or ""),
        link=link,
        error=error,
    )


def _not_admin(context: WebContext, session: SalesSession) -> HTMLResponse:
    return render(
        context,
        "sales/error.html",
        403,
        session=session,
        title="Réservé aux administrateurs",
        message="Seul un compte admin gère les comptes.",
    )


@router.get("", response_class=HTMLResponse)
def accounts_page(request: Request, context: Context) -> Response:
    session = current_session(request, context)
    if session is None:
        return _login_redirect(request)
    if not manages_accounts(session.person):
        return _not_admin(context, session)
    return _page(context, session)


@router.post("/{action}", response_class=HTMLResponse)
async def account_action(action: str, request: Request, context: Context) -> Response:
    session = await run_in_threadpool(current_session, request, context)
    if session is None:
        return _login_redirect(request, "/sales/accounts")
    form = await read_form(request)
    if not csrf_ok(context, session, form.get("csrf")):
        return _forbidden(context)
    if not manages_accounts(session.person):
        return _not_admin(context, session)
    if action not in DONE:
        return _page(context, session, 404, error="Action inconnue.")
    return await run_in_threadpool(_act, context, session, action, form)


def _act(
    context: WebContext, session: SalesSession, action: str, form: dict[str, str]
) -> HTMLResponse:
    email = form.get("email", "").strip()
    now = clock.now()
    token: str | None = None
    try:
        with context.engine.sessions.begin() as db:
            if action == "add":
                zone = form.get("timezone", "").strip() or (
                    context.engine.project.config.sending.default_timezone
                )
                account = accounts.add(
                    db, email, form.get("name", ""), form.get("role", "sales"), zone, now
                )
                token = accounts.issue_link(db, account, now)
            elif action == "reset":
                account = accounts.get(db, email)
                accounts.unlock(db, account.email)
                token = accounts.issue_link(db, account, now)
            elif action == "unlock":
                accounts.unlock(db, accounts.get(db, email).email)
            elif action == "disable":
                if accounts.account_email(email) == session.person.email:
                    raise AccountError("you cannot disable your own account")
                accounts.disable(db, email, now)
            else:
                accounts.enable(db, email)
    except AccountError as exc:
        return _page(context, session, 422, error=str(exc))
    link = f"{context.settings.base_url}/sales/password?token={token}" if token else None
    return _page(context, session, done=action, link=link)
