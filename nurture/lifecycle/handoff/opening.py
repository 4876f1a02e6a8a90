"""Opening handoffs: owner, frozen snapshot, notifications, for a whole batch at once.

A batch of events can push dozens of contacts over `handoff.at`. Opened one by
one, each handoff cost ten statements (four snapshot queries, the round robin,
the insert and its flush, one insert per notification, its event); here the
batch's handoffs share them: one query per kind of snapshot data for all the
contacts, one step of the round robin for all the turns taken, one insert of
handoffs and one of notifications. The caller records the `handoff.created`
events with its own system events, in the same statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.contacts.standing import ScoreState, view_of
from nurture.definitions import model as m
from nurture.events import EventType
from nurture.expressions import ExpressionError
from nurture.lifecycle.facts import SystemEvent
from nurture.lifecycle.handoff import views
from nurture.lifecycle.notifications import json_safe, notification, queue_many
from nurture.records import Record, Recorder
from nurture.store.handoffs import (
    SnapshotData,
    advance_round_robin,
    contacts_with_open_handoff,
    create_round_robin,
    insert_handoffs,
    snapshot_data,
)
from nurture.store.models import Contact
from nurture.store.statuses import HandoffStatus

CONTENT_EVENTS = (
    EventType.CONTENT_DOWNLOADED,
    EventType.PAGE_VISITED,
    EventType.EMAIL_CLICKED,
    EventType.WEBINAR_REGISTERED,
)
TIMELINE_KEYS = ("url", "title", "content", "template", "step")
ROUND_ROBIN = "handoff"


def open_handoffs(
    config: m.ProjectConfig,
    record: Recorder,
    session: Session,
    opening: Sequence[tuple[Contact, str]],
    now: datetime,
) -> list[SystemEvent]:
    """Open a handoff for each (contact, cause) without an open one; the events to record.

    Sets each contact's `owner`; the caller writes the contact.
    """
    rules = config.handoff
    if rules is None or not opening:
        return []
    already = contacts_with_open_handoff(session, [c.id for c, _ in opening])
    wanted: list[tuple[Contact, str]] = []
    for contact, cause in opening:
        if contact.id not in already:
            already.add(contact.id)
            wanted.append((contact, cause))
    if not wanted:
        return []
    owners = _owners(session, config, [contact for contact, _ in wanted], now)
    data = snapshot_data(session, [contact.id for contact, _ in wanted])
    due = now + rules.sla.accept_within if rules.sla.accept_within else None
    rows = []
    for (contact, cause), owner in zip(wanted, owners, strict=True):
        contact.owner = owner
        rows.append(
            {
                "contact_id": contact.id,
                "status": HandoffStatus.OPEN,
                "owner": owner,
                "created_at": now,
                "sla_due_at": due,
                "snapshot": json_safe(snapshot_of(config, contact, data[contact.id], now)),
                "actions": [
                    {"at": now.isoformat(), "action": "opened", "by": "nurture", "reason": cause}
                ],
            }
        )
    ids = insert_handoffs(session, rows)
    notifications: list[dict[str, Any]] = []
    events: list[SystemEvent] = []
    topic = EventType.HANDOFF_CREATED
    for (contact, _cause), row, handoff_id in zip(wanted, rows, ids, strict=True):
        payload = views.payload(
            views.fields(
                handoff_id=handoff_id,
                status=HandoffStatus.OPEN,
                owner=row["owner"],
                created_at=now,
                sla_due_at=due,
                reason=None,
            ),
            contact,
            row["snapshot"],
        )
        for number, notify in enumerate(rules.notify):
            if notify.kind == "webhook":
                key, target, template = f"webhook:{number}", notify.target, None
            else:
                key, template = f"email:{number}", notify.template or "sales/handoff"
                target = row["owner"] if notify.target == "owner" else notify.target
                if not target:
                    continue
            notifications.append(
                notification(
                    f"handoff:{handoff_id}:created:{key}",
                    notify.kind,
                    topic,
                    target,
                    payload,
                    now,
                    template=template,
                    handoff_id=handoff_id,
                    contact_id=contact.id,
                    plain=True,
                )
            )
        # As `Handoffs._emit` does for every later action: the first one is number 1.
        for number, hook in enumerate(config.webhooks):
            if topic in hook.events:
                notifications.append(
                    notification(
                        f"{topic}:{handoff_id}:1:{number}",
                        "webhook",
                        topic,
                        hook.url,
                        payload,
                        now,
                        handoff_id=handoff_id,
                        contact_id=contact.id,
                        plain=True,
                    )
                )
        events.append(
            SystemEvent(
                contact,
                f"{topic}:{handoff_id}:1",
                topic,
                {"handoff": handoff_id, "owner": row["owner"], "reason": None},
            )
        )
        record(
            Record(
                now,
                "handoff",
                contact.id,
                contact.email,
                details={"event": topic, "owner": row["owner"], "handoff": handoff_id},
            )
        )
    queue_many(session, notifications)
    return events


def _owners(
    session: Session, config: m.ProjectConfig, contacts: Sequence[Contact], now: datetime
) -> list[str | None]:
    """The contact's own owner, else the first matching rule, else the next round-robin
    turns, handed out in order (one atomic step of the rotation for all of them)."""
    assign = config.handoff.assign if config.handoff else m.Assign()
    owners: list[str | None] = []
    rotating: list[int] = []
    for contact in contacts:
        owner = contact.owner or _by_rule(config, assign, contact, now)
        if owner is None and assign.round_robin:
            rotating.append(len(owners))
        owners.append(owner)
    if rotating:
        for index, turn in zip(
            rotating,
            next_turns(session, ROUND_ROBIN, len(assign.round_robin), len(rotating)),
            strict=True,
        ):
            owners[index] = assign.round_robin[turn]
    return owners


def _by_rule(
    config: m.ProjectConfig, assign: m.Assign, contact: Contact, now: datetime
) -> str | None:
    if not assign.rules:
        return None
    context = {
        "contact": view_of(contact, config, now),
        "now": now,
        "stage_index": config.stage_index,
    }
    for rule in assign.rules:
        try:
            if rule.when is None or rule.when.test(context):
                return rule.owner
        except ExpressionError:
            continue
    return None


def next_turns(session: Session, name: str, size: int, count: int) -> list[int]:
    """The next `count` positions of a round-robin, taken atomically (safe across workers)."""
    position = advance_round_robin(session, name, count)
    if position is None:
        create_round_robin(session, name)
        position = advance_round_robin(session, name, count)
        assert position is not None
    return [(position - count + n) % size for n in range(count)]


def snapshot_of(
    config: m.ProjectConfig, contact: Contact, data: SnapshotData, now: datetime
) -> dict[str, Any]:
    """What sales sees, frozen at handoff time."""
    view = view_of(contact, config, now)
    state = ScoreState(contact.fit_score, contact.engagement_score, contact.score_updated_at)
    content = next((e for e in data.events if e.type in CONTENT_EVENTS), None)
    by_rule: dict[str, float] = {}
    for rule, points in data.rule_points:
        by_rule[rule] = round(by_rule.get(rule, 0) + points, 2)
    return {
        "contact": {
            "email": contact.email,
            "name": " ".join(p for p in (contact.first_name, contact.last_name) if p) or None,
            "company": contact.company,
            "stage": view.stage,
            "properties": dict(contact.properties),
        },
        "score": {
            "total": view.score,
            "fit": state.fit,
            "engagement": round(state.engagement_at(now, config.scoring.half_life), 2),
            "by_rule": by_rule,
        },
        "temperature": view.temperature,
        "stage_history": [
            {"at": h.at.isoformat(), "from": h.from_stage, "to": h.to_stage, "cause": h.cause}
            for h in data.history
        ],
        "timeline": [
            {
                "at": e.at.isoformat(),
                "type": e.type,
                **{k: v for k, v in e.properties.items() if k in TIMELINE_KEYS},
            }
            for e in data.events
        ],
        "last_content": None
        if content is None
        else {
            "at": content.at.isoformat(),
            "type": content.type,
            "title": content.properties.get("title") or content.properties.get("content"),
            "url": content.properties.get("url"),
        },
        "emails": [
            {
                "at": s.sent_at.isoformat() if s.sent_at else None,
                "template": s.template,
                "subject": s.subject,
            }
            for s in data.emails
        ],
    }


def snapshots(
    config: m.ProjectConfig, session: Session, contacts: Mapping[int, Contact], now: datetime
) -> dict[int, dict[str, Any]]:
    """Snapshots of these contacts as they are now (one query per kind of data)."""
    data = snapshot_data(session, list(contacts))
    return {cid: snapshot_of(config, contact, data[cid], now) for cid, contact in contacts.items()}
