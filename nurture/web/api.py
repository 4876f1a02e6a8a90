"""The JSON API under `/v1` (API key): events in, contacts upserted, contacts explained.

Batches answer item by item, in request order: a refused item is refused
alone, with its reason, and nothing of it is applied, while the valid items
next to it go in together in one transaction. The status code says how the
batch went as a whole:

- 200: every item accepted (for events, recorded or a duplicate of one
  already recorded; for contacts, created, updated or unchanged);
- 207 Multi-Status: some items were refused, the others applied;
- 422: every item was refused (so nothing was applied).

The body is the same in all three cases: counts and one result per item. The
request as a whole is refused (nothing applied) when it is not JSON (415),
too large (413), malformed or an empty or oversized list (400).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import nurture.clock as clock
from nurture.contacts.parsing import ContactInput, InvalidContact, unknown_column_message
from nurture.contacts.values import value_problem
from nurture.errors import ContactNotFound
from nurture.lifecycle.importer import ImportedBatch, upsert_contacts
from nurture.lifecycle.incoming import IncomingEvent, InvalidEvent, parse_event
from nurture.store.contacts import contact_ids_by_email
from nurture.tools.explain import explain
from nurture.web.auth import require_api_key
from nurture.web.bodies import MAX_ITEMS, read_items
from nurture.web.context import WebContext, web_context
from nurture.web.schemas import (
    CONTACT_SCHEMA,
    EVENT_SCHEMA,
    ContactResult,
    ContactsResult,
    EventResult,
    EventsResult,
    one_or_many,
    problems,
)

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["api"])

Context = Annotated[WebContext, Depends(web_context)]


def _batch_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        207: {
            "model": model,
            "description": "Some items refused (see their reason), others applied",
        },
        422: {"model": model, "description": "Every item refused: nothing applied"},
        **problems(400, 401, 413, 415),
    }


def batch_status(accepted: int, rejected: int) -> int:
    if not rejected:
        return status.HTTP_200_OK
    return 207 if accepted else 422


# --- events ---------------------------------------------------------------------


@router.post(
    "/events",
    summary="Record events (one, or a list of up to 1,000)",
    response_model=EventsResult,
    responses=_batch_responses(EventsResult),
    openapi_extra=one_or_many(EVENT_SCHEMA, MAX_ITEMS),
)
async def post_events(request: Request, context: Context) -> JSONResponse:
    """Events as in SPEC §5, idempotent by `id`: a repeated id is a `duplicate`."""
    items = await read_items(request, "event")
    result = await run_in_threadpool(ingest_events, context, items)
    accepted = result.recorded + result.duplicate
    return JSONResponse(result.model_dump(), batch_status(accepted, result.rejected))


def _event_id(item: Any) -> str | None:
    value = item.get("id") if isinstance(item, dict) else None
    return value if isinstance(value, str) and value_problem(value) is None else None


def ingest_events(context: WebContext, items: Sequence[Any]) -> EventsResult:
    now = clock.now()
    results: list[EventResult | None] = [None] * len(items)
    valid: list[tuple[int, IncomingEvent]] = []
    for index, item in enumerate(items):
        try:
            problem = value_problem(item)
            if problem:
                raise InvalidEvent(problem)
            valid.append((index, parse_event(item, now=now)))
        except InvalidEvent as exc:
            results[index] = EventResult(
                index=index, id=_event_id(item), status="rejected", reason=str(exc)
            )
    if valid:
        outcomes = context.ingestor.ingest(
            context.engine.sessions, [event for _, event in valid], "api"
        )
        for (index, event), outcome in zip(valid, outcomes, strict=True):
            results[index] = EventResult(
                index=index,
                id=event.id,
                status=outcome.status,
                reason=outcome.reason,
            )
    done = [r for r in results if r is not None]
    return EventsResult(
        recorded=sum(r.status == "recorded" for r in done),
        duplicate=sum(r.status == "duplicate" for r in done),
        rejected=sum(r.status == "rejected" for r in done),
        items=done,
    )


# --- contacts -------------------------------------------------------------------


@router.post(
    "/contacts",
    summary="Create or update contacts by email (one, or a list of up to 1,000)",
    response_model=ContactsResult,
    responses=_batch_responses(ContactsResult),
    openapi_extra=one_or_many(CONTACT_SCHEMA, MAX_ITEMS),
)
async def post_contacts(request: Request, context: Context) -> JSONResponse:
    """The rules of `nurture contacts import`: fields given are set (empty ones
    never erase), properties merged, tags added, a withdrawn consent kept. The
    engine reacts in the same transaction: a stage set enrolls the contact
    (or ends nurture at the prospect stage) and fit points are re-scored.
    Each email at most once per request."""
    items = await read_items(request, "contact")
    result = await run_in_threadpool(upsert, context, items)
    accepted = result.created + result.updated + result.unchanged
    return JSONResponse(result.model_dump(), batch_status(accepted, result.rejected))


def upsert(context: WebContext, items: Sequence[Any]) -> ContactsResult:
    results: list[ContactResult | None] = [None] * len(items)
    valid: list[tuple[int, ContactInput]] = []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidContact("a contact must be a JSON object")
            problem = value_problem(item)
            if problem:
                raise InvalidContact(problem)
            contact = context.contacts.parse(item)
            if contact.email in first:
                raise InvalidContact(
                    f"{contact.email} appears earlier in this request (item {first[contact.email]})"
                )
        except InvalidContact as exc:
            email = item.get("email") if isinstance(item, dict) else None
            shown = email if isinstance(email, str) and value_problem(email) is None else None
            results[index] = ContactResult(
                index=index, email=shown, status="rejected", reason=str(exc)
            )
            continue
        first[contact.email] = index
        valid.append((index, contact))
    if valid:
        _write(context, valid, results)
    done = [r for r in results if r is not None]
    return ContactsResult(
        created=sum(r.status == "created" for r in done),
        updated=sum(r.status == "updated" for r in done),
        unchanged=sum(r.status == "unchanged" for r in done),
        rejected=sum(r.status == "rejected" for r in done),
        items=done,
    )


def _write(
    context: WebContext,
    valid: list[tuple[int, ContactInput]],
    results: list[ContactResult | None],
) -> None:
    engine = context.engine
    emails = {contact.email for _, contact in valid}
    with engine.sessions() as session:
        existing = set(contact_ids_by_email(session, emails))
    changed: set[int] = set()

    def react(session: Any, batch: ImportedBatch) -> None:
        changed.clear()  # a retried batch reports again
        changed.update(batch.contact_ids)
        engine.on_import(session, batch)

    report = upsert_contacts(
        engine.sessions,
        [contact for _, contact in valid],
        first_stage=engine.project.config.stages[0],
        source="api",
        on_batch=react,
    )
    with engine.sessions() as session:
        ids = contact_ids_by_email(session, emails)
    warnings: dict[int, list[str]] = {}
    for warning in report.warnings:
        if warning.line is not None:
            warnings.setdefault(warning.line - 1, []).append(warning.message)
    for position, (index, contact) in enumerate(valid):
        if contact.email not in existing:
            outcome = "created"
        elif ids.get(contact.email) in changed:
            outcome = "updated"
        else:
            outcome = "unchanged"
        notes = warnings.get(position, [])
        notes += [f"{name!r} is computed by nurture; ignored" for name in contact.ignored]
        notes += [unknown_column_message(n, hint).split(";")[0] for n, hint in contact.unknown]
        results[index] = ContactResult(
            index=index,
            email=contact.email,
            status=outcome,
            warnings=notes,
        )


@router.get(
    "/contacts/{email}",
    summary="Explain a contact: stage, score ledger, workflows, next step, emails",
    responses=problems(401, 404),
)
def get_contact(email: str, context: Context) -> dict[str, Any]:
    """What `nurture explain EMAIL --json` prints."""
    engine = context.engine
    try:
        with engine.sessions() as session:
            return explain(session, engine, email, clock.now())
    except ContactNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
