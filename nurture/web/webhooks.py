"""`POST /v1/webhooks/{provider}`: delivery, bounce, complaint and unsubscribe reports.

No API key here: ESPs cannot send one, they sign instead or present a shared
secret (see `providers`). A signed request's replay key (Mailgun's token, an
SNS message id, a SendGrid post) is claimed in the database in the
transaction that records its events, so every web process refuses a replay.
Once the signature is good the answer is 200 whatever the events say, item by
item, because providers retry anything else for hours: an event for a send we
do not know (another system's mail, a contact since erased) is `ignored`, a
malformed one `rejected`, neither worth a retry. Events are matched to our
send by `X-Nurture-Send-Id` when the provider echoes it, else by the
Message-ID we stored when the relay accepted the message; they are recorded
for the send's contact in one transaction, so a hard bounce or a complaint
suppresses the contact before the next send is due.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.errors import NurtureError
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.sends import load_send, send_properties
from nurture.store import sends as ledger
from nurture.store import webhook_replays as replays
from nurture.store.models import Send
from nurture.web.bodies import is_json, read_body
from nurture.web.context import WebContext, web_context
from nurture.web.providers import PROVIDERS, ProviderEvent, Receipt, Replay, WebhookRefused
from nurture.web.schemas import WEBHOOK_BODY, WebhookResult, WebhookResults, problems

log = logging.getLogger("nurture.web")

#: The reason of every item of a request already received (an SNS or SendGrid retry).
ALREADY_RECEIVED = "this signed request was already received"

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "/{provider}",
    summary="ESP webhook: delivered, bounced, complained, unsubscribed",
    response_model=WebhookResults,
    responses=problems(400, 401, 404, 413, 415, 502),
    openapi_extra=WEBHOOK_BODY,
)
async def webhook(
    provider: str, request: Request, context: Annotated[WebContext, Depends(web_context)]
) -> WebhookResults:
    """Providers: `generic` (X-Nurture-Signature), `mailgun` (signed token), `sendgrid`
    (ECDSA), `postmark` and `brevo` (basic auth or bearer token), `ses` (SNS signatures)."""
    handler = PROVIDERS.get(provider)
    if handler is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown provider {provider[:40]!r} (expected one of: {', '.join(PROVIDERS)})",
        )
    content_type = request.headers.get("content-type")
    if not is_json(content_type) and not (handler.plain_text and _is_text(content_type)):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json"
        )
    body = await read_body(request)
    try:
        receipt = handler.receive(body, request.headers, context)
        return await run_in_threadpool(_receive, context, provider, receipt)
    except WebhookRefused as exc:
        if exc.status_code == 401:
            log.warning("webhook %s refused: %s", provider, exc.reason)
        raise HTTPException(exc.status_code, exc.reason) from None


def _is_text(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "text/plain"


def _receive(context: WebContext, provider: str, receipt: Receipt) -> WebhookResults:
    result = record(context, provider, receipt.events, receipt.replay)
    if receipt.on_success is not None and not _replayed(result):
        receipt.on_success()
    _forget_expired(context)
    return result


def _replayed(result: WebhookResults) -> bool:
    return any(item.reason == ALREADY_RECEIVED for item in result.items)


#: When this process last deleted expired replay keys (monotonic seconds).
_last_purge = [0.0]
_PURGE_EVERY = 300.0


def _forget_expired(context: WebContext) -> None:
    """Now and then (every 5 minutes a process), expired replay keys are deleted."""
    now = time.monotonic()
    if now - _last_purge[0] < _PURGE_EVERY:
        return
    _last_purge[0] = now
    try:
        with context.engine.sessions.begin() as session:
            replays.forget_expired(session, clock.now())
    except NurtureError as exc:  # the next purge will do; the webhook was recorded
        log.warning("could not delete expired webhook replay keys: %s", exc)


def _message_ids(value: str | None) -> list[str]:
    """Both spellings: ``<id@host>`` as we store it, ``id@host`` as Mailgun reports it."""
    if not value or len(value) > 998:
        return []
    bare = value.strip().removeprefix("<").removesuffix(">").strip()
    return [f"<{bare}>", bare] if bare else []


def record(
    context: WebContext, provider: str, events: list[ProviderEvent], replay: Replay | None = None
) -> WebhookResults:
    """Record the events that name one of our sends, with the request's replay key
    claimed in the same transaction (a replay records nothing)."""
    results: list[WebhookResult | None] = []
    incoming: list[tuple[int, IncomingEvent]] = []

    def matched(session: Session) -> list[IncomingEvent]:
        """The events that name one of our sends, in the ingest's transaction (again
        on a retry); the others get their result here."""
        results[:] = [None] * len(events)
        incoming.clear()
        if replay is not None:
            now = clock.now()
            if not replays.claim(session, replay.key, now, now + replay.ttl):
                if replay.refuse:
                    raise WebhookRefused(401, f"replayed {provider} signature")
                results[:] = [
                    WebhookResult(index=i, id=e.id, status="duplicate", reason=ALREADY_RECEIVED)
                    for i, e in enumerate(events)
                ]
                return []
        by_message_id = ledger.sends_by_message_id(
            session, [m for e in events for m in _message_ids(e.message_id)]
        )
        for index, event in enumerate(events):
            if event.problem or event.ignore or event.id is None or event.type is None:
                results[index] = WebhookResult(
                    index=index,
                    id=event.id,
                    status="rejected" if event.problem else "ignored",
                    reason=event.problem or event.ignore,
                )
                continue
            send = load_send(session, event.send_id) or next(
                (by_message_id[m] for m in _message_ids(event.message_id) if m in by_message_id),
                None,
            )
            if send is None:
                results[index] = WebhookResult(
                    index=index, id=event.id, status="ignored", reason=_unmatched(event)
                )
                continue
            incoming.append((index, _incoming(event, send)))
        return [e for _, e in incoming]

    outcomes = context.ingestor.ingest(context.engine.sessions, matched, f"webhook:{provider}")
    for (index, event_in), outcome in zip(incoming, outcomes, strict=True):
        results[index] = WebhookResult(
            index=index,
            id=event_in.id,
            status="ignored" if outcome.status == "rejected" else outcome.status,
            reason=outcome.reason,
        )
    done = [r for r in results if r is not None]
    return WebhookResults(
        recorded=sum(r.status == "recorded" for r in done),
        duplicate=sum(r.status == "duplicate" for r in done),
        ignored=sum(r.status == "ignored" for r in done),
        rejected=sum(r.status == "rejected" for r in done),
        items=done,
    )


def _incoming(event: ProviderEvent, send: Send) -> IncomingEvent:
    assert event.id is not None and event.type is not None and event.at is not None
    return IncomingEvent(
        id=event.id,
        type=event.type,
        at=event.at,
        contact_id=send.contact_id,
        properties={**send_properties(send), **event.properties},
        raw=event.raw,
    )


def _unmatched(event: ProviderEvent) -> str:
    return (
        f"no send matches (send_id {str(event.send_id)[:40]!r}, "
        f"message_id {(event.message_id or '')[:100]!r})"
    )
