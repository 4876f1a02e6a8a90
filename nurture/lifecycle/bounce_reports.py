"""Bounces and complaints from our own MTA's mailbox → `email.bounced` / `email.complained`.

What `nurture bounces read` runs. Each unseen message of the mailbox
(`nurture.delivery.mailboxes`) is read (`nurture.delivery.reports`), tied to
the send it is about, and recorded for that send's contact through the one
ingest entry, so a hard bounce or a complaint suppresses the address as an
ESP's webhook would, and `sending.soft_bounce_limit` soft bounces in a row do.

Which send: the returned original's Message-ID is ours alone (128 random
bits), so it is trusted as it is. A send id (the original's
``X-Nurture-Send-Id``, or the VERP address of `sending.return_path` the
report came back to) is a small number anyone could guess, and the bounce
address is public: a report matched by send id alone must also name the
send's recipient, or anyone could suppress any contact with a forged bounce.
A report whose Message-ID and send id disagree matches nothing.

Event ids are stable, so reading the same messages again records nothing
new: ``dsn:<report Message-ID>`` for a hard bounce, ``arf:<…>`` for a
complaint, and ``dsn-soft:<send id>`` for a soft bounce: at most one soft
bounce counts per email, however many delay warnings the MTA sends about it.

A message is marked done only after its transaction committed; one that
could not be read or matched is kept, unseen, and listed with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.addresses import canonical_email
from nurture.delivery.mailboxes import ReportMailbox
from nurture.delivery.reports import (
    MailReport,
    UnreadableReport,
    read_report,
    send_id_from_return_path,
)
from nurture.errors import Problem
from nurture.events import EventType
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.ingest import Ingestor
from nurture.lifecycle.sends import load_send, send_properties
from nurture.store import sends as ledger
from nurture.store.contacts import contact_by_id
from nurture.store.models import Send

DEFAULT_BATCH_SIZE = 100


@dataclass
class BounceReading:
    """What a reading of the mailbox did: counts, and every message left with its reason."""

    mailbox: str
    read: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    duplicate: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def recorded(self) -> int:
        return self.hard + self.soft + self.complaints


def read_bounces(
    ingestor: Ingestor,
    sessions: sessionmaker[Session],
    mailbox: ReportMailbox,
    *,
    label: str,
    return_path: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_message: Callable[[int], None] | None = None,
) -> BounceReading:
    """Read every unseen message of `mailbox` (see the module docstring).

    `label` names the mailbox in problems and in the events' source;
    `return_path` is `sending.return_path` (VERP) when configured.
    """
    reading = BounceReading(label)
    batch: list[tuple[str, MailReport]] = []

    def leave(key: str, reason: str) -> None:
        reading.problems.append(Problem(key, None, reason))
        mailbox.keep(key)

    def flush() -> None:
        if batch:
            _record(ingestor, sessions, batch, reading, mailbox, leave, label, return_path)
            batch.clear()

    for message in mailbox.unseen():
        reading.read += 1
        try:
            batch.append((message.key, read_report(message.data)))
        except UnreadableReport as exc:
            leave(message.key, str(exc))
        if len(batch) >= batch_size:
            flush()
        if on_message is not None:
            on_message(reading.read)
    flush()
    return reading


def _record(
    ingestor: Ingestor,
    sessions: sessionmaker[Session],
    batch: list[tuple[str, MailReport]],
    reading: BounceReading,
    mailbox: ReportMailbox,
    leave: Callable[[str, str], None],
    label: str,
    return_path: str | None,
) -> None:
    unmatched: dict[str, str] = {}
    repeated: list[str] = []
    events: list[tuple[str, MailReport, IncomingEvent]] = []

    def events_of(session: Session) -> list[IncomingEvent]:
        # Called again if the transaction is retried: everything starts afresh.
        unmatched.clear()
        repeated.clear()
        events.clear()
        now = clock.now()
        by_message_id = ledger.sends_by_message_id(
            session, [r.original_message_id for _, r in batch if r.original_message_id]
        )
        seen: set[str] = set()
        for key, report in batch:
            send, reason = _match(session, report, by_message_id, return_path)
            if send is None:
                unmatched[key] = reason
                continue
            event = _event(report, send, key, now)
            if event.id in seen:  # a second delay warning for the same email, say
                repeated.append(key)
                continue
            seen.add(event.id)
            events.append((key, report, event))
        return [e for _, _, e in events]

    outcomes = ingestor.ingest(sessions, events_of, f"mailbox:{label}")
    for key, reason in unmatched.items():
        leave(key, reason)
    for key in repeated:
        reading.duplicate += 1
        mailbox.done(key)
    for (key, report, _), outcome in zip(events, outcomes, strict=True):
        if outcome.status == "rejected":
            leave(key, outcome.reason or "refused")
            continue
        if outcome.status == "duplicate":
            reading.duplicate += 1
        elif report.kind == "complaint":
            reading.complaints += 1
        elif report.bounce == "hard":
            reading.hard += 1
        else:
            reading.soft += 1
        mailbox.done(key)


def _match(
    session: Session,
    report: MailReport,
    by_message_id: dict[str, Send],
    return_path: str | None,
) -> tuple[Send | None, str]:
    """The send the report is about, or None and why not (see the module docstring)."""
    named = report.original_send_id
    if named is None and return_path is not None:
        named = send_id_from_return_path(return_path, report.envelope_addresses)
    message_id = report.original_message_id
    if message_id is not None:
        send = by_message_id.get(message_id)
        if send is not None:
            if named is not None and named != str(send.id):
                return None, (
                    f"the returned Message-ID {message_id} is send {send.id}'s, "
                    f"but the report names send {named}"
                )
            return send, ""
        if named is None:
            return None, f"the returned Message-ID {message_id} is not one of our emails"
        return None, (
            f"the report names send {named}, but the returned Message-ID {message_id} "
            "is not that email's"
        )
    if named is None:
        return None, (
            "names none of our emails (no returned Message-ID or X-Nurture-Send-Id"
            + (", no VERP address)" if return_path else "; sending.return_path is not set)")
        )
    send = load_send(session, named)
    contact = contact_by_id(session, send.contact_id) if send is not None else None
    if send is None or contact is None:
        return None, f"names send {named}, which does not exist"
    mine = canonical_email(contact.email) or contact.email.lower()
    if mine not in {canonical_email(a) or a.lower() for a in report.recipients}:
        return None, (
            f"names send {named} by its id alone, without that email's recipient "
            "(an id is easy to guess: the recipient must agree)"
        )
    return send, ""


def _event(report: MailReport, send: Send, key: str, now: datetime) -> IncomingEvent:
    properties: dict[str, Any] = {**send_properties(send), "provider": "mailbox"}
    if report.kind == "complaint":
        kind = EventType.EMAIL_COMPLAINED
        event_id = report.event_id
        properties["feedback_type"] = report.feedback_type
    else:
        kind = EventType.EMAIL_BOUNCED
        properties["bounce"] = report.bounce
        # At most one soft bounce per email: the MTA's later warnings are duplicates.
        event_id = report.event_id if report.bounce == "hard" else f"dsn-soft:{send.id}"
        if report.status:
            properties["code"] = report.status
        if report.diagnostic:
            properties["reason"] = report.diagnostic
    raw = {
        "report": report.report_id,
        "mailbox_message": key,
        "reporter": report.reporter,
        "recipients": list(report.recipients),
        "status": report.status,
        "diagnostic": report.diagnostic,
        "feedback_type": report.feedback_type,
    }
    at = now if report.at is None or report.at > now else report.at
    return IncomingEvent(
        id=event_id,
        type=kind,
        at=at,
        contact_id=send.contact_id,
        properties=properties,
        raw={k: v for k, v in raw.items() if v},
    )
