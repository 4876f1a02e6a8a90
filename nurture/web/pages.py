"""Pages people see: unsubscribe (RFC 8058 one-click and its confirmation page),
"view in browser", and the page for a link that is not valid.

Everything here is reached from an email, signed token in the URL, by people
who may not read English: every page is bilingual (French first, as the
example project writes to French SMEs), needs no cookie nor login, and says
the minimum (no email address: a forwarded link must not leak whose it is).
`GET /u/{token}` only asks: mail scanners follow links, so unsubscribing
takes a `POST`, which is also what RFC 8058 one-click clients send.
"""

from __future__ import annotations

import html
import logging
import uuid
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

import nurture.clock as clock
from nurture.contacts.standing import view_of
from nurture.delivery.consent import PAUSE_CHOICES
from nurture.errors import TemplateError
from nurture.events import EventType
from nurture.lifecycle.sends import load_send
from nurture.rendering import email_context
from nurture.store.contacts import contact_by_id
from nurture.tokens import InvalidToken
from nurture.web.context import WebContext, web_context
from nurture.web.sends import record_for_send

log = logging.getLogger("nurture.web")

router = APIRouter(tags=["pages"])

#: Headers of every page reached by a signed link: never cached, indexed,
#: framed, nor sent on as a Referer (the token is a credential).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_OWN_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: An email's HTML loads images and fonts from anywhere, but never runs a script.
_EMAIL_CSP = "script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:34rem;"
    "margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}"
    "section+section{margin-top:2rem;padding-top:1rem;border-top:1px solid #ddd}"
    "button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:4px;"
    "background:#1f4e8c;color:#fff;cursor:pointer}"
)


def page(title: str, french: str, english: str, status_code: int = 200) -> HTMLResponse:
    """A small bilingual page; `french` and `english` are HTML fragments."""
    document = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<section lang="fr">{french}</section><section lang="en">{english}</section>'
        "</body></html>"
    )
    return HTMLResponse(
        document, status_code, headers={**PAGE_HEADERS, "Content-Security-Policy": _OWN_CSP}
    )


def not_found_page() -> HTMLResponse:
    return page(
        "Lien invalide / Invalid link",
        "<h1>Lien invalide</h1><p>Ce lien n'est pas valide ou a été modifié.</p>",
        "<h1>Invalid link</h1><p>This link is not valid, or it was altered.</p>",
        404,
    )


def _unavailable_page() -> HTMLResponse:
    return page(
        "Erreur / Error",
        "<h1>Un problème est survenu</h1><p>Veuillez réessayer dans quelques minutes.</p>",
        "<h1>Something went wrong</h1><p>Please try again in a few minutes.</p>",
        503,
    )


def _unsubscribed_page() -> HTMLResponse:
    return page(
        "Désinscription confirmée / Unsubscribed",
        "<h1>Vous êtes désinscrit(e)</h1>"
        "<p>Vous ne recevrez plus nos e-mails. Vous pouvez fermer cette page.</p>",
        "<h1>You are unsubscribed</h1>"
        "<p>You will not receive our emails any more. You can close this page.</p>",
    )


Context = Annotated[WebContext, Depends(web_context)]


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe: confirmation page",
    responses={404: {"description": "Invalid link", "content": {"text/html": {}}}},
)
def unsubscribe_page(token: str, request: Request, context: Context) -> HTMLResponse:
    """Asks for confirmation (a link scanner's GET must not unsubscribe anyone)."""
    try:
        context.signer.verify("unsubscribe", token)
    except InvalidToken:
        return not_found_page()
    action = html.escape(request.url.path, quote=True)

    def form(label: str) -> str:
        return (
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{label}</button></form>'
        )

    def pauses(label: str) -> str:
        return "".join(
            f'<form method="post" action="{action}/pause" style="display:inline-block;'
            f'margin:0 .5rem .5rem 0"><input type="hidden" name="days" value="{days}">'
            f'<button type="submit">{label.format(days=days)}</button></form>'
            for days in PAUSE_CHOICES
        )

    return page(
        "Se désinscrire / Unsubscribe",
        "<h1>Se désinscrire</h1><p>Vous ne recevrez plus aucun e-mail de notre part.</p>"
        + form("Me désinscrire")
        + "<h2>Ou faire une pause</h2><p>Trop d'e-mails en ce moment ? Suspendez-les, "
        "ils reprendront ensuite d'eux-mêmes.</p>" + pauses("Pause de {days} jours"),
        "<h1>Unsubscribe</h1><p>You will not receive any more emails from us.</p>"
        + form("Unsubscribe me")
        + "<h2>Or take a break</h2><p>Too many emails right now? Pause them; they "
        "resume by themselves afterwards.</p>" + pauses("Pause for {days} days"),
    )


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe at once (RFC 8058 one-click)",
    responses={
        404: {"description": "Invalid link", "content": {"text/html": {}}},
        503: {"description": "Could not record it; try again", "content": {"text/html": {}}},
    },
)
def unsubscribe(token: str, context: Context) -> HTMLResponse:
    """Records `email.unsubscribed` for the send's contact: all email stops at once.

    Idempotent: one unsubscribe per send, and nothing is recorded for a contact
    whose consent is already withdrawn. The body (``List-Unsubscribe=One-Click``)
    is not required.
    """
    try:
        payload = context.signer.verify("unsubscribe", token)
    except InvalidToken:
        return not_found_page()
    send_id = payload.get("s")
    try:
        record_for_send(
            context,
            send_id,
            event_type=EventType.EMAIL_UNSUBSCRIBED,
            event_id=f"unsubscribe:{send_id}",
            properties={"method": "link"},
            raw={"via": "unsubscribe", "send_id": send_id},
            source="unsubscribe",
            unless_withdrawn=True,
        )
    except Exception:
        # Never claim an unsubscribe that did not happen: a 503 gets retried.
        log.exception("could not record an unsubscribe for send %s", send_id)
        return _unavailable_page()
    return _unsubscribed_page()


@router.post(
    "/u/{token}/pause",
    response_class=HTMLResponse,
    summary="Pause nurture email for 30 or 90 days instead of unsubscribing",
    responses={
        400: {"description": "Not a pause on offer", "content": {"text/html": {}}},
        404: {"description": "Invalid link", "content": {"text/html": {}}},
        503: {"description": "Could not record it; try again", "content": {"text/html": {}}},
    },
)
async def pause(token: str, request: Request, context: Context) -> HTMLResponse:
    """Records `email.paused` (``days`` from the form): sends wait until the pause
    ends, then resume; nothing is dropped. A contact already unsubscribed stays so."""
    try:
        payload = context.signer.verify("unsubscribe", token)
    except InvalidToken:
        return not_found_page()
    form = parse_qs((await request.body())[:1000].decode("utf-8", "replace"))
    choice = (form.get("days") or [""])[0]
    days = int(choice) if choice.isdigit() else 0
    if days not in PAUSE_CHOICES:
        return page(
            "Choix invalide / Invalid choice",
            "<h1>Choix invalide</h1><p>Choisissez une pause proposée sur la page.</p>",
            "<h1>Invalid choice</h1><p>Please pick one of the pauses on the page.</p>",
            400,
        )
    send_id = payload.get("s")
    try:
        status = await run_in_threadpool(
            record_for_send,
            context,
            send_id,
            event_type=EventType.EMAIL_PAUSED,
            event_id=f"pause:{send_id}:{uuid.uuid4()}",
            properties={"days": days, "method": "link"},
            raw={"via": "pause", "send_id": send_id, "days": days},
            source="unsubscribe",
            unless_withdrawn=True,
        )
    except Exception:
        log.exception("could not record a pause for send %s", send_id)
        return _unavailable_page()
    if status == "skipped":
        return _unsubscribed_page()
    if status == "gone":
        return not_found_page()
    until = clock.now() + timedelta(days=days)
    return page(
        "Pause enregistrée / Emails paused",
        f"<h1>C'est noté</h1><p>Vous ne recevrez aucun e-mail de notre part avant le "
        f"{until:%d/%m/%Y}. Ils reprendront ensuite.</p>",
        f"<h1>Done</h1><p>You will get no email from us before {until:%Y-%m-%d}. "
        "They will resume afterwards.</p>",
    )


@router.get(
    "/v/{token}",
    response_class=HTMLResponse,
    summary="View an email in the browser",
    responses={404: {"description": "Invalid link or email gone", "content": {"text/html": {}}}},
)
def view_in_browser(token: str, context: Context) -> HTMLResponse:
    """The email as sent, rendered again with the contact's current data."""
    try:
        payload = context.signer.verify("view", token)
    except InvalidToken:
        return not_found_page()
    now = clock.now()
    engine = context.engine
    with engine.sessions() as session:
        send = load_send(session, payload.get("s"))
        contact = contact_by_id(session, send.contact_id) if send is not None else None
        if send is None or contact is None:
            return not_found_page()
        view = view_of(contact, engine.project.config, now)
    links = context.links
    email = email_context(
        view,
        unsubscribe_url=links.unsubscribe(send.id),
        view_in_browser_url=links.view_in_browser(send.id),
        now=now,
    )
    try:
        rendered = context.templates.render(
            send.template, email, rewrite_link=lambda url: links.click(send.id, url)
        )
    except TemplateError as exc:
        log.warning("view in browser: send %s cannot be rendered: %s", send.id, exc)
        return not_found_page()
    return HTMLResponse(
        rendered.html, headers={**PAGE_HEADERS, "Content-Security-Policy": _EMAIL_CSP}
    )
