"""Getting into the sales inbox: sign in, sign out, choose a password.

Sign-in is an account's address and password (`nurture.lifecycle.signin`
limits the guesses: a wait that doubles, then a lockout); API keys open
nothing here, they are for machines. A password is chosen through a one-time
link (`/sales/password?token=…`): printed by `nurture users add` or `users
reset`, or in the handoff email of an owner who has no account yet (a
sign-up for that address). Opening the link shows the form and uses nothing;
sending the form uses the link, ends every session of the account and signs
this browser in. Sign-in and password forms posted from another site are
refused (login CSRF); logout needs the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import nurture.clock as clock
from nurture.lifecycle import accounts, signin
from nurture.lifecycle.accounts import AccountError
from nurture.web.context import WebContext, web_context
from nurture.web.sales import HEADERS, _forbidden, _login_redirect, render
from nurture.web.sales_session import (
    clear_session_cookie,
    cross_site,
    csrf_ok,
    current_session,
    read_form,
    safe_next,
    set_session_cookie,
)

router = APIRouter(prefix="/sales", include_in_schema=False)

Context = Annotated[WebContext, Depends(web_context)]

INVALID = "Adresse ou mot de passe incorrect."
LOCKED = (
    "Ce compte est verrouillé après trop de tentatives. Demandez à un·e administrateur·rice "
    "un lien pour choisir un nouveau mot de passe (nurture users reset votre-adresse)."
)
NO_LINK = (
    "Ce lien n'est plus valable (déjà utilisé, expiré ou remplacé par un plus récent). "
    "Demandez-en un nouveau à un·e administrateur·rice (nurture users reset votre-adresse)."
)


def _login_form(
    context: WebContext, status_code: int, target: str, email: str, error: str | None
) -> HTMLResponse:
    return render(context, "sales/login.html", status_code, next=target, error=error, email=email)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, context: Context, next: str | None = None) -> Response:
    target = safe_next(next)
    if current_session(request, context) is not None:
        return RedirectResponse(target, 303, headers=HEADERS)
    return _login_form(context, 200, target, "", None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, context: Context) -> Response:
    form = await read_form(request)
    target = safe_next(form.get("next"))
    email = form.get("email", "").strip()[:320]
    if cross_site(request):
        return _forbidden(context)
    if not email or not form.get("password"):
        return _login_form(
            context, 422, target, email, "Indiquez votre adresse et votre mot de passe."
        )
    address = request.client.host if request.client else None

    def attempt() -> signin.SignIn:
        with context.engine.sessions.begin() as db:
            return signin.sign_in(db, email, form.get("password", ""), address, clock.now())

    outcome = await run_in_threadpool(attempt)
    if outcome.token is None:
        if outcome.refused == "wait":
            slow = _login_form(
                context,
                429,
                target,
                email,
                f"Trop de tentatives : réessayez dans {outcome.retry_after} s.",
            )
            slow.headers["Retry-After"] = str(outcome.retry_after)
            return slow
        if outcome.refused == "locked":
            return _login_form(context, 423, target, email, LOCKED)
        return _login_form(context, 401, target, email, INVALID)
    response = RedirectResponse(target, 303, headers=HEADERS)
    set_session_cookie(response, context, outcome.token)
    return response


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    session = await run_in_threadpool(current_session, request, context)
    if session is None:
        return _login_redirect(request, "/sales")
    form = await read_form(request)
    if not csrf_ok(context, session, form.get("csrf")):
        return _forbidden(context)

    def end() -> None:
        with context.engine.sessions.begin() as db:
            signin.end(db, session.sid)

    await run_in_threadpool(end)
    response = RedirectResponse("/sales/login", 303, headers=HEADERS)
    clear_session_cookie(response, context)
    return response


# --- choosing a password through a one-time link ------------------------------------------------


def _password_form(
    context: WebContext,
    status_code: int,
    token: str,
    email: str,
    signup: bool,
    name: str = "",
    error: str | None = None,
) -> HTMLResponse:
    return render(
        context,
        "sales/password.html",
        status_code,
        token=token,
        email=email,
        signup=signup,
        name=name,
        error=error,
        min_length=accounts.MIN_PASSWORD,
    )


def _no_link(context: WebContext) -> HTMLResponse:
    return render(
        context, "sales/error.html", 410, session=None, title="Lien expiré", message=NO_LINK
    )


@router.get("/password", response_class=HTMLResponse)
def password_page(context: Context, token: str = "") -> Response:
    """The form only: opening the link (a mail scanner does) uses nothing."""
    with context.engine.sessions() as db:
        link = accounts.valid_link(db, token, clock.now())
        if link is None:
            return _no_link(context)
        email, signup = link.email, link.purpose == "signup"
    name = accounts.name_from_email(email) if signup else ""
    return _password_form(context, 200, token, email, signup, name)


@router.post("/password", response_class=HTMLResponse)
async def set_password(request: Request, context: Context) -> Response:
    form = await read_form(request)
    if cross_site(request):
        return _forbidden(context)
    token, password = form.get("token", ""), form.get("password", "")
    name = form.get("name", "").strip()
    zone = context.engine.project.config.sending.default_timezone

    def use() -> HTMLResponse | str:
        now = clock.now()
        email, signup = "", False
        try:
            with context.engine.sessions.begin() as db:
                link = accounts.valid_link(db, token, now)
                if link is None:
                    return _no_link(context)
                email, signup = link.email, link.purpose == "signup"
                if password != form.get("confirm", ""):
                    raise AccountError("Les deux mots de passe diffèrent.")
                done = accounts.use_link(db, link, password, now, name=name, timezone=zone)
                return signin.open_session(db, done.account, now)
        except AccountError as exc:
            return _password_form(context, 422, token, email, signup, name, str(exc))

    outcome = await run_in_threadpool(use)
    if isinstance(outcome, HTMLResponse):
        return outcome
    response = RedirectResponse("/sales", 303, headers=HEADERS)
    set_session_cookie(response, context, outcome)
    return response
