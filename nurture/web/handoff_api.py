"""`/v1/handoffs`: the sales handoffs for a CRM or a script (API key).

List and read handoffs; accept one, send it back to nurturing with a reason
(recycled as `handoff.on_reject` says), or reopen a rejected one. Each action
is one transaction and lands in the handoff's action log with `by` (default
``"api"``) and the reason. 404: no such handoff; 409: not in a state that
allows the action (the detail says why); 422: a malformed body (a rejection
without a reason, say).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.lifecycle.handoff.actions import HandoffConflict, HandoffNotFound
from nurture.web import inbox
from nurture.web.auth import require_api_key
from nurture.web.context import WebContext, web_context
from nurture.web.schemas import NON_BLANK_PATTERN, problems

router = APIRouter(
    prefix="/v1/handoffs", dependencies=[Depends(require_api_key)], tags=["handoffs"]
)

Context = Annotated[WebContext, Depends(web_context)]
HandoffId = Annotated[int, Path(ge=1, le=inbox.MAX_ID, description="The handoff's id")]


def _clean(value: str, what: str) -> str:
    problem = value_problem(value)
    if problem:
        raise ValueError(problem)
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be blank")
    return value


class Actor(BaseModel):
    """Who acts on a handoff, for its action log: the optional body of accept and reopen."""

    model_config = ConfigDict(regex_engine="python-re")  # the schema's own regex dialect

    by: str = Field(
        default="api",
        min_length=1,
        max_length=inbox.MAX_BY,
        pattern=NON_BLANK_PATTERN,
        description="Who acts, for the action log (a name or an email address); not blank.",
    )

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        return _clean(value, "by")


class Rejection(Actor):
    """The body of a rejection: who sends the lead back to nurturing, and why."""

    reason: str = Field(
        min_length=1,
        max_length=inbox.MAX_REASON,
        pattern=NON_BLANK_PATTERN,
        description="Why the lead goes back to nurturing (required, not blank).",
        examples=["Pas de budget avant le T3"],
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _clean(value, "reason")


def _act(
    context: WebContext,
    handoff_id: int,
    action: inbox.Action,
    by: str,
    reason: str | None = None,
) -> dict[str, Any]:
    try:
        return inbox.act(context.engine, handoff_id, action, by, reason, clock.now())
    except HandoffNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except HandoffConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("", summary="List handoffs, most urgent first", responses=problems(401))
def list_handoffs(
    context: Context,
    status_: Annotated[inbox.Status | None, Query(alias="status")] = None,
    owner: Annotated[str | None, Query(max_length=inbox.MAX_BY)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Open handoffs by SLA due date, decided ones latest first. Each has its
    contact, owner, status, score and temperature when handed over, `overdue`
    (open past `sla_due_at`), `age_seconds` and `due_in_seconds`."""
    problem = value_problem(owner) if owner is not None else None
    if problem is not None:
        raise RequestValidationError(
            [{"loc": ("query", "owner"), "msg": problem, "type": "value_error"}]
        )
    now = clock.now()
    with context.engine.sessions() as session:
        items = inbox.list_handoffs(session, now, status_, owner, limit)
    return {"items": items}


@router.get(
    "/{handoff_id}",
    summary="One handoff: snapshot, action log, the contact now",
    responses=problems(401, 404),
)
def get_handoff(handoff_id: HandoffId, context: Context) -> dict[str, Any]:
    try:
        return inbox.load(context.engine, handoff_id, clock.now())
    except HandoffNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post(
    "/{handoff_id}/accept",
    summary="Accept a handoff (the contact moves to `on_accept.stage`, if set)",
    responses=problems(400, 401, 404, 409),
)
def accept(
    handoff_id: HandoffId, context: Context, body: Annotated[Actor | None, Body()] = None
) -> dict[str, Any]:
    return _act(context, handoff_id, "accept", (body or Actor()).by)


@router.post(
    "/{handoff_id}/reject",
    summary="Send a lead back to nurturing, with a reason",
    responses=problems(400, 401, 404, 409),
)
def reject(handoff_id: HandoffId, body: Rejection, context: Context) -> dict[str, Any]:
    """Recycled as `handoff.on_reject` says: stage back, score kept, halved or reset,
    enrolled in the recycle workflow."""
    return _act(context, handoff_id, "reject", body.by, body.reason)


@router.post(
    "/{handoff_id}/reopen",
    summary="Reopen a rejected handoff (the contact goes back to `handoff.at`)",
    responses=problems(400, 401, 404, 409),
)
def reopen(
    handoff_id: HandoffId, context: Context, body: Annotated[Actor | None, Body()] = None
) -> dict[str, Any]:
    return _act(context, handoff_id, "reopen", (body or Actor()).by)
