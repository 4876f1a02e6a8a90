"""`nurture explain EMAIL` and `GET /v1/contacts/{email}`: where a contact is, and why.

One function gathers it all as plain data (JSON-ready), so the CLI and the API
say the same thing: stage and history, the score with every ledger line (a
"revoked" one says whose points it took back and why), each enrollment with its
step, what it waits for and what comes next, the emails it got, the latest
opens and clicks with their class (human, machine, repeat: a machine's or a
repeat neither scores nor ends a wait, `nurture.lifecycle.traffic`) and the
reason, the segments it is in and why (the events counted), and — if nothing
is being sent — the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.contacts.standing import ScoreState, view_of
from nurture.definitions import model as m
from nurture.definitions.ladder import at_or_beyond
from nurture.delivery.consent import contact_block, paused_until
from nurture.engine.assignment import held_out
from nurture.engine.service import Engine, state_of
from nurture.errors import ContactNotFound
from nurture.events import Traffic
from nurture.lifecycle.traffic import CLASSIFIED
from nurture.store.contacts import contact_by_email
from nurture.store.enrollments import enrollments_of
from nurture.store.events import Signal, signals_named, signals_of
from nurture.store.models import Contact, Enrollment
from nurture.store.scores import ledger_of
from nurture.store.sends import sends_of
from nurture.store.stages import stage_history_of
from nurture.store.statuses import RUNNING, EnrollmentStatus
from nurture.tools.segments import segments_of_contact

#: The opens and clicks `explain` lists, the latest first cut.
SIGNALS_SHOWN = 50

#: How a time reads inside the sentences (`next`, `not_emailed_because`, notes).
Moment = Callable[[datetime], str]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _exact(moment: datetime) -> str:
    return moment.isoformat()


def explain(
    session: Session, engine: Engine, email: str, now: datetime, when: Moment = _exact
) -> dict[str, Any]:
    """Everything about one contact. Fields stay exact (ISO times in UTC, unrounded
    scores); `when` writes the times inside sentences: ISO for machines, the
    reader's local time for the command line (`nurture.readable`)."""
    contact = contact_by_email(session, email)
    if contact is None:
        raise ContactNotFound(f"no contact with email {email!r}")
    config = engine.project.config
    view = view_of(contact, config, now)
    state = ScoreState(contact.fit_score, contact.engagement_score, contact.score_updated_at)
    history = stage_history_of(session, contact.id)
    ledger = ledger_of(session, contact.id)
    enrollments = enrollments_of(session, contact.id)
    sends = sends_of(session, contact.id)
    signals, signals_total = signals_of(session, contact.id, sorted(CLASSIFIED), SIGNALS_SHOWN)
    causes = {
        signal.event_id: signal
        for signal in signals_named(
            session, contact.id, {e.event_id for e in ledger if e.kind == "revoked" and e.event_id}
        )
    }
    return {
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "name": " ".join(p for p in (contact.first_name, contact.last_name) if p) or None,
            "company": contact.company,
            "stage": view.stage,
            "owner": contact.owner,
            "timezone": contact.timezone or config.sending.default_timezone,
            "consent": contact.consent_status,
            "consent_basis": contact.consent_basis,
            "consent_source": contact.consent_source,
            "consent_at": _iso(contact.consent_at),
            "consent_proof": contact.consent_proof,
            "suppressed": contact.suppression_reason if contact.suppressed_at else None,
            "paused_until": _iso(paused_until(contact, now)),
            "soft_bounces": contact.soft_bounces,
            "source": contact.source,
            "created_at": _iso(contact.created_at),
            "properties": dict(contact.properties),
            "tags": list(contact.tags),
        },
        "score": {
            "now": view.score,
            "fit": state.fit,
            "engagement": round(state.engagement_at(now, config.scoring.half_life), 4),
            "temperature": view.temperature,
            "ledger": [
                {
                    "at": _iso(e.at),
                    "kind": e.kind,
                    "rule": e.rule,
                    "points": e.points,
                    "score_after": e.score_after,
                    "event": e.event_id,
                    "note": (
                        _revoked(causes.get(e.event_id or ""), when)
                        if e.kind == "revoked"
                        else None
                    ),
                }
                for e in ledger
            ],
        },
        "stage_history": [
            {"at": _iso(h.at), "from": h.from_stage, "to": h.to_stage, "cause": h.cause}
            for h in history
        ],
        "enrollments": [_enrollment(session, engine, e, when) for e in enrollments],
        "emails": [
            {
                "at": _iso(s.sent_at or s.claimed_at),
                "workflow": s.workflow,
                "step": s.step,
                "template": s.template,
                "variant": s.variant,  # an A/B test's, else None
                "subject": s.subject,
                "status": s.status,
                "error": s.error,
                # Claimed and due later: a retry, a held template, the send rate.
                "next_attempt_at": _iso(s.next_attempt_at)
                if s.status == "claimed" and s.next_attempt_at is not None
                else None,
            }
            for s in sends
        ],
        "segments": segments_of_contact(session, config, contact, now),
        "signals": [_signal(signal) for signal in signals],
        "signals_total": signals_total,
        "not_emailed_because": _why_not(contact, enrollments, config, now, when),
    }


def _signal(signal: Signal) -> dict[str, Any]:
    return {
        "at": _iso(signal.at),
        "event": signal.event_id,
        "type": signal.type,
        "workflow": signal.workflow,
        "template": signal.template,
        "url": signal.url,
        "traffic": signal.traffic,
        "reason": signal.traffic_reason,
    }


def signal_text(signal: dict[str, Any]) -> str:
    """One open or click in words: ``email.clicked lead/welcome — machine: user agent: curl``."""
    what = " ".join(x for x in (signal["type"], signal["template"], signal["url"]) if x)
    traffic = signal["traffic"]
    if traffic == Traffic.HUMAN:
        return f"{what} — human"
    unscored = "not scored" if traffic == Traffic.MACHINE else "not scored again"
    reason = f": {signal['reason']}" if signal["reason"] else ""
    return f"{what} — {traffic}{reason} ({unscored})"


def _revoked(cause: Signal | None, when: Moment) -> str:
    """Why a "revoked" ledger row took points back."""
    if cause is None:
        return "points taken back: the event turned out to be a machine's"
    what = " ".join(x for x in (cause.type, cause.template) if x)
    reason = f": {cause.traffic_reason}" if cause.traffic_reason else ""
    return (
        f"points taken back: the {what} of {when(cause.at)} turned out to be "
        f"a {cause.traffic}'s{reason}"
    )


def _enrollment(
    session: Session, engine: Engine, enrollment: Enrollment, when: Moment
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workflow": enrollment.workflow,
        "version": enrollment.workflow_version_id,
        "status": enrollment.status,
        "step": enrollment.step,
        "started_at": _iso(enrollment.started_at),
        "ended_at": _iso(enrollment.ended_at),
        "exit_reason": enrollment.exit_reason,
        "next_run_at": _iso(enrollment.next_run_at),
    }
    if enrollment.status in (EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED):
        return data
    workflow = engine.workflow(session, enrollment)
    state = state_of(enrollment)
    if workflow is None:
        data["next"] = "its workflow version can no longer be read; it will exit"
        return data
    step = workflow.step(state.step) if state.step else workflow.steps[0]
    data["next"] = describe(step, workflow, enrollment.next_run_at, state.deferred, when)
    if held_out(workflow, str(enrollment.contact_id)):
        data["holdout"] = True
        data["next"] += " (in the workflow's holdout: none of its emails is sent)"
    return data


def describe(
    step: m.Step,
    workflow: m.Workflow,
    at: datetime | None,
    deferred: str | None,
    when: Moment = _exact,
) -> str:
    """What this enrollment does next, in words."""
    moment = when(at) if at else None
    following = workflow.next_step(step)
    then = (
        f"send {' or '.join(following.templates)}"
        if isinstance(following, m.SendStep)
        else (f"go to {following.id}" if following else "finish the workflow")
    )
    if isinstance(step, m.WaitForStep):
        on_event = step.on_event or (following.id if following else "the end")
        on_timeout = step.on_timeout or (following.id if following else "the end")
        awaited = f"segment {step.segment}" if step.segment else step.event
        return (
            f"waiting for {awaited} (then {on_event}); if none comes by "
            f"{moment or 'its timeout'}, {on_timeout}"
        )
    if isinstance(step, m.WaitStep):
        return f"waiting until {moment or 'its time'}, then {then}"
    if isinstance(step, m.SendStep):
        because = {
            "window": " (outside the send window)",
            "cap": " (frequency cap reached)",
            "paused": " (the contact paused nurture email until then)",
            "previous-email": " (the workflow's previous email is not sent yet)",
        }
        at_moment = f" at {moment}" if moment else ""
        what = " or ".join(step.templates) + (" (A/B test)" if step.variants else "")
        return f"send {what}{at_moment}{because.get(deferred or '', '')}"
    return f"run step {step.id} ({step.kind})" + (f" at {moment}" if moment else "")


def _why_not(
    contact: Contact,
    enrollments: list[Enrollment] | Any,
    config: m.ProjectConfig,
    now: datetime,
    when: Moment,
) -> str | None:
    blocked = contact_block(contact, config.sending)
    if blocked == "no-consent":
        return "no-consent: consent unknown and sending.require_consent is true"
    if blocked:
        return blocked
    pause = paused_until(contact, now)
    if pause is not None:
        return f"paused until {when(pause)}: the contact asked for a break; sends wait"
    if at_or_beyond(contact.stage or config.stages[0], config.prospect_stage, config.stages):
        return f"prospect (stage {contact.stage}): automated nurture email has stopped"
    if not any(e.status in RUNNING for e in enrollments):
        return "not in any running workflow"
    return None
