"""The send ledger: claims, leases, outcomes, and what delivery re-reads.

A send row is claimed (unique `claim_key`) before any mail leaves; delivery
leases it, re-reads the contact's standing, and records the outcome. See
`engine/delivery.py` and `engine/outcomes.py`. Nothing here commits; the
caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from nurture.store.models import Contact, Enrollment, Send
from nurture.store.sql import among, insert_ignore, json_rows, on_postgresql
from nurture.store.statuses import SendStatus

_sends = cast(Table, Send.__table__)


def claim_sends(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert send claims; returns claim key → id for the rows *this* call inserted.

    A claim key that already exists (a retried message, a racing worker) is
    silently skipped: that email was claimed before, and is not ours to send.
    """
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the batch: executemany's RETURNING took ~0.1 ms a row.
        document = json_rows([{column: r[column] for column, _ in _CLAIM_COLUMNS} for r in rows])
        return {row.claim_key: row.id for row in session.execute(_CLAIM_MANY, {"rows": document})}
    # The rows as executemany parameters (SQLAlchemy's "insertmanyvalues"), not
    # inlined with `.values(rows)`: that statement was compiled afresh for every
    # batch, ~0.5 ms a row (`benchmarks/send_throughput.py`).
    statement = insert_ignore(session, _sends, None, ["claim_key"]).returning(
        _sends.c.claim_key, _sends.c.id
    )
    return {row.claim_key: row.id for row in session.execute(statement, [dict(r) for r in rows])}


_CLAIM_COLUMNS = (
    ("claim_key", "text"),
    ("enrollment_id", "bigint"),
    ("contact_id", "bigint"),
    ("workflow", "text"),
    ("step", "text"),
    ("template", "text"),
    ("status", "text"),
    ("claimed_at", "timestamptz"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("lease_until", "timestamptz"),
    ("variant", "text"),
)
_CLAIM_MANY = text(
    f"""
    INSERT INTO sends ({", ".join(c for c, _ in _CLAIM_COLUMNS)})
    SELECT {", ".join(c for c, _ in _CLAIM_COLUMNS)}
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r({", ".join(f"{c} {k}" for c, k in _CLAIM_COLUMNS)})
    ON CONFLICT (claim_key) DO NOTHING
    RETURNING claim_key, id
    """
)


def lease_sends(
    session: Session,
    now: datetime,
    lease: timedelta,
    ids: Iterable[int] | None = None,
    limit: int = 500,
) -> list[int]:
    """Lease sends due for delivery (the given ones, or the oldest due); counts an attempt."""
    due = and_(
        Send.status == SendStatus.CLAIMED,
        Send.next_attempt_at <= now,
        or_(Send.lease_until.is_(None), Send.lease_until < now),
    )
    if ids is not None:
        target = among(session, Send.id, set(ids))
    else:
        target = Send.id.in_(
            select(Send.id)
            .where(due)
            .order_by(Send.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    statement = (
        update(Send)
        .where(target, due)
        .values(lease_until=now + lease, attempts=Send.attempts + 1)
        .returning(Send.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))


def renew_send_leases(session: Session, sends: Sequence[tuple[int, int]], until: datetime) -> None:
    """Extend leases still held: (send id, the `attempts` value this worker leased it at)."""
    if sends:
        session.execute(
            update(_sends)
            .where(
                _sends.c.id == bindparam("send_id"),
                _sends.c.attempts == bindparam("held_attempts"),
                _sends.c.status == SendStatus.CLAIMED,
            )
            .values(lease_until=until),
            [{"send_id": i, "held_attempts": a} for i, a in sends],
        )


def load_sends(session: Session, ids: Iterable[int]) -> list[Send]:
    return list(
        session.scalars(select(Send).where(among(session, Send.id, set(ids))).order_by(Send.id))
    )


def sent_times(session: Session, ids: Iterable[int]) -> dict[int, datetime | None]:
    """When each of these sends left (None: not yet), locking their rows so two opens
    or clicks of one email are classified one after the other, never both as the first.

    PostgreSQL locks the rows (FOR UPDATE); SQLite has no row locks and pysqlite
    starts a transaction only at the first write, so a no-op write on the rows
    takes the database's write lock before anything is read.
    """
    wanted = set(ids)
    query = select(Send.id, Send.sent_at).where(among(session, Send.id, wanted))
    if on_postgresql(session):
        query = query.with_for_update(of=Send)
    elif wanted:
        session.execute(
            update(Send)
            .where(among(session, Send.id, wanted))
            .values(id=Send.id)
            .execution_options(synchronize_session=False)
        )
    return {send_id: sent_at for send_id, sent_at in session.execute(query)}


def finish_sends(session: Session, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Record delivery outcomes: each mapping has `send_id` and the columns to set."""
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for outcome in outcomes:
        columns = tuple(sorted(k for k in outcome if k != "send_id"))
        by_columns.setdefault(columns, []).append(outcome)
    for columns, group in by_columns.items():
        session.execute(finish_statement(columns), [dict(row) for row in group])


@lru_cache(maxsize=32)
def finish_statement(columns: tuple[str, ...]) -> Any:
    """The outcome UPDATE for one set of columns, built once: delivery runs it per email."""
    return (
        update(_sends)
        .where(_sends.c.id == bindparam("send_id"))
        .values({column: bindparam(column) for column in columns})
    )


#: What `delivery.block_reason` reads of a contact, re-read just before sending.
STANDING_COLUMNS = (
    "stage",
    "suppressed_at",
    "suppression_reason",
    "consent_status",
    "consent_basis",
    "paused_until",
)


def contact_standing(session: Session, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each contact's stage, suppression, consent and pause as committed now."""
    table = cast(Table, Contact.__table__)
    columns = [table.c[name] for name in STANDING_COLUMNS]
    rows = session.execute(select(table.c.id, *columns).where(among(session, table.c.id, set(ids))))
    return {row.id: {name: row._mapping[name] for name in STANDING_COLUMNS} for row in rows}


def enrollment_endings(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """Each enrollment's status and exit reason as committed now."""
    rows = session.execute(
        select(Enrollment.id, Enrollment.status, Enrollment.exit_reason).where(
            among(session, Enrollment.id, set(ids))
        )
    )
    return {row.id: (row.status, row.exit_reason) for row in rows}


def pending_sends(session: Session, contact_ids: Iterable[int]) -> dict[int, datetime]:
    """Enrollments with an email claimed but not sent yet, and when it may be done.

    An email held up (a relay's 4xx backoff, a dead worker's lease) must not be
    overtaken by its workflow's next one. Keyed by enrollment; the moment is
    the latest retry or lease end of its pending sends (`EARLIEST` if neither
    is set: due now). Read by contact, whose index `sends` has.
    """
    rows = session.execute(
        select(Send.enrollment_id, Send.next_attempt_at, Send.lease_until).where(
            among(session, Send.contact_id, set(contact_ids)),
            Send.status == SendStatus.CLAIMED,
            Send.enrollment_id.is_not(None),
        )
    )
    found: dict[int, datetime] = {}
    for enrollment_id, next_attempt_at, lease_until in rows:
        if enrollment_id is None:  # (excluded by the query; for the type checker)
            continue
        moments = [m for m in (next_attempt_at, lease_until) if m is not None]
        found[enrollment_id] = max([found.get(enrollment_id, EARLIEST), *moments])
    return found


EARLIEST = datetime.min.replace(tzinfo=UTC)


def recent_send_times(
    session: Session, contact_ids: Iterable[int], since: datetime
) -> dict[int, list[datetime]]:
    """When each contact was last emailed (claimed or sent), for frequency caps."""
    rows = session.execute(
        select(Send.contact_id, Send.claimed_at).where(
            among(session, Send.contact_id, set(contact_ids)),
            Send.claimed_at >= since,
            Send.status.in_((SendStatus.CLAIMED, SendStatus.SENT)),
        )
    )
    found: dict[int, list[datetime]] = {}
    for contact_id, at in rows:
        found.setdefault(contact_id, []).append(at)
    return found


def sends_by_message_id(session: Session, message_ids: Iterable[str]) -> dict[str, Send]:
    """Sends whose stored Message-ID is among `message_ids` (as stored: ``<...>``).

    The fallback of ESP webhooks that do not echo `X-Nurture-Send-Id`; unindexed.
    """
    wanted = list(set(message_ids))
    if not wanted:
        return {}
    statement = select(Send).where(Send.message_id.in_(wanted))
    return {send.message_id: send for send in session.scalars(statement) if send.message_id}


def due_sends(session: Session, now: datetime, limit: int) -> list[int]:
    """Claimed sends due again (a retry, or orphaned by a dead worker) and not leased."""
    return list(
        session.scalars(
            select(Send.id)
            .where(
                Send.status == SendStatus.CLAIMED,
                Send.next_attempt_at <= now,
                (Send.lease_until.is_(None)) | (Send.lease_until < now),
            )
            .order_by(Send.next_attempt_at)
            .limit(limit)
        )
    )


def sends_of(session: Session, contact_id: int) -> list[Send]:
    """A contact's sends in the order they were claimed (`explain`)."""
    return list(
        session.scalars(
            select(Send).where(Send.contact_id == contact_id).order_by(Send.claimed_at, Send.id)
        )
    )
