"""Writing a decision's effects, inside the advance's transaction.

The executor decides (`executor.py`, pure); this is where its effects meet
the database: send claims to insert, fields set on the contact (then fit
scoring and `enroll: {when: …}` re-tested), points added, `notify` steps
queued once, and the traces that become the timeline's records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.engine import executor as ex
from nurture.lifecycle.notifications import queue
from nurture.lifecycle.service import Lifecycle
from nurture.records import Record, Recorder
from nurture.store import experiments
from nurture.store.models import Contact, Enrollment
from nurture.store.statuses import SendStatus

#: Executor traces that become records (simulate's timeline), under their record kind.
RECORDED_TRACES = {
    "exit": "exit",
    "defer": "skip",
    "wait": "wait",
    "wait_for": "wait_for",
    "event": "resume",  # a wait_for ended by its event
    "timeout": "timeout",
    "withheld": "skip",  # a holdout contact's email, not sent
    "holdout": "holdout",
    "split": "split",
}

_CONTACT_FIELDS = ("first_name", "last_name", "company", "timezone", "owner")


def apply_effects(
    lifecycle: Lifecycle,
    record: Recorder,
    session: Session,
    enrollment: Enrollment,
    contact: Contact,
    decision: ex.Decision,
    now: datetime,
) -> list[dict[str, Any]]:
    """Write a decision's effects; returns the send claims to insert."""
    claims = []
    arms: list[dict[str, Any]] = []
    refit = False
    for effect in decision.effects:
        if isinstance(effect, ex.SendEmail):
            claims.append(
                {
                    "claim_key": f"{enrollment.id}:{effect.step}:{effect.visit}",
                    "enrollment_id": enrollment.id,
                    "contact_id": contact.id,
                    "workflow": enrollment.workflow,
                    "step": effect.step,
                    "template": effect.template,
                    "status": SendStatus.CLAIMED,
                    "claimed_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                    # Unleased unless the advancing worker delivers it itself
                    # (`Engine.advance`): then whoever leases it first delivers it.
                    "lease_until": None,
                    "variant": effect.variant,
                }
            )
        elif isinstance(effect, ex.SetFields):
            _set_fields(contact, effect)
            refit = True
        elif isinstance(effect, ex.AddScore):
            lifecycle.scoring.add_points(
                session,
                contact,
                effect.points,
                key=f"step:{enrollment.id}:{effect.step}:{effect.visit}",
                step=(enrollment.workflow, effect.step),
                now=now,
            )
        elif isinstance(effect, ex.SendNotification):
            _notify(record, session, enrollment, contact, effect, now)
        elif isinstance(effect, ex.Assign):
            arms.append(
                {
                    "enrollment_id": enrollment.id,
                    "contact_id": contact.id,
                    "workflow": enrollment.workflow,
                    "experiment": effect.experiment,
                    "arm": effect.arm,
                    "stage": effect.stage,
                    "at": now,
                }
            )
    if arms:
        experiments.assign_arms(session, arms)
    if refit:
        lifecycle.profile_changed(session, [contact], now)
    for trace in decision.trace:
        if trace.kind in RECORDED_TRACES:
            record(
                Record(
                    now,
                    RECORDED_TRACES[trace.kind],
                    contact.id,
                    contact.email,
                    enrollment.workflow,
                    trace.step,
                    dict(trace.detail),
                )
            )
    return claims


def _notify(
    record: Recorder,
    session: Session,
    enrollment: Enrollment,
    contact: Contact,
    effect: ex.SendNotification,
    now: datetime,
) -> None:
    """A workflow's `notify` step: queued once (keyed by enrollment, step and visit)."""
    notify = effect.notify
    target = _notify_target(notify, contact)
    details: dict[str, Any] = {"kind": notify.kind, "to": target}
    if target is None:
        details["skipped"] = "the contact has no owner"
    else:
        payload = {
            "contact": {
                "id": contact.id,
                "email": contact.email,
                "stage": contact.stage,
                "score": contact.score,
                "owner": contact.owner,
            },
            "workflow": enrollment.workflow,
            "step": effect.step,
        }
        queue(
            session,
            f"step:{enrollment.id}:{effect.step}:{effect.visit}",
            notify.kind,
            "workflow.notify",
            target,
            payload,
            now,
            template=notify.template,
            contact_id=contact.id,
        )
    record(
        Record(now, "notify", contact.id, contact.email, enrollment.workflow, effect.step, details)
    )


def _notify_target(notify: m.Notify, contact: Contact) -> str | None:
    return contact.owner if notify.target == "owner" else notify.target


def _set_fields(contact: Contact, effect: ex.SetFields) -> None:
    properties = dict(contact.properties)
    for key, value in effect.properties.items():
        if key in _CONTACT_FIELDS:
            setattr(contact, key, value)
        else:
            properties[key] = value
    contact.properties = properties
    tags = [t for t in contact.tags if t not in effect.remove_tags]
    contact.tags = tags + [t for t in effect.add_tags if t not in tags]
