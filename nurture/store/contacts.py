"""Every database operation, as a named function in one place.

Callers say what they want (`existing_contacts_by_email`) instead of writing
SQL where they stand, so the statements the engine depends on can be read,
indexed and tuned together. Functions take a `Session` and never commit: the
caller owns the transaction, which is what lets one import batch or one actor
run succeed or fail as a whole.

Bulk paths use Core statements with executemany: the ORM unit of work costs
more than the rest of an import of 100k contacts put together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from nurture.contacts.view import ContactView
from nurture.store.models import Contact, Enrollment, StageHistory

_contacts = cast(Table, Contact.__table__)
_stage_history = cast(Table, StageHistory.__table__)


class ProjectLike(Protocol):
    """The part of a project's configuration a contact view needs."""

    @property
    def stages(self) -> Sequence[str]: ...

    @property
    def properties(self) -> Mapping[str, str]: ...


#: Contact columns an upsert may compare and change (not id, score or timestamps).
CONTACT_DATA_COLUMNS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "timezone",
    "owner",
    "stage",
    "consent_status",
    "consent_basis",
    "consent_source",
    "consent_at",
    "consent_proof",
    "properties",
    "tags",
)


def existing_contacts_by_email(
    session: Session, emails: Collection[str]
) -> dict[str, dict[str, Any]]:
    """The stored data columns (plus ``id``) of the contacts among `emails`.

    `emails` must already be normalised; one SELECT, so keep the collection to
    a batch (SQLite allows 32766 bound parameters).
    """
    if not emails:
        return {}
    columns = [_contacts.c.id, *(_contacts.c[name] for name in CONTACT_DATA_COLUMNS)]
    statement = select(*columns).where(_contacts.c.email.in_(list(emails)))
    return {row.email: dict(row._mapping) for row in session.execute(statement)}


def insert_contacts(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert contacts in one executemany (every row with the same keys).

    No RETURNING on purpose: with it, SQLAlchemy renders one giant multi-row
    INSERT per page, which psycopg re-parses every time (3x slower on
    PostgreSQL). Ask `contact_ids_by_email` for the ids you need.
    """
    if rows:
        session.execute(insert(_contacts), list(rows))


def contact_ids_by_email(session: Session, emails: Collection[str]) -> dict[str, int]:
    """Ids of the contacts among `emails` (normalised), in one SELECT."""
    if not emails:
        return {}
    statement = select(_contacts.c.email, _contacts.c.id).where(_contacts.c.email.in_(list(emails)))
    return {email: contact_id for email, contact_id in session.execute(statement)}


def update_contacts(session: Session, changes: Iterable[Mapping[str, Any]]) -> None:
    """Apply per-contact changes, each a mapping with ``id`` and the columns to set.

    Changes are grouped by the set of columns they touch so each group is one
    executemany, instead of one UPDATE per contact.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        columns = tuple(sorted(key for key in change if key != "id"))
        if columns:
            params = {f"p_{key}": value for key, value in change.items()}
            groups.setdefault(columns, []).append(params)
    for columns, group in groups.items():
        statement = (
            update(_contacts)
            .where(_contacts.c.id == bindparam("p_id"))
            .values({name: bindparam(f"p_{name}") for name in columns})
        )
        session.execute(statement, group)


def insert_stage_history(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record stage changes (contact_id, from_stage, to_stage, at, cause, details)."""
    if rows:
        session.execute(insert(_stage_history), list(rows))


def contact_by_email(session: Session, email: str) -> Contact | None:
    """The contact with `email`, compared normalised (stripped, lowercased)."""
    statement = select(Contact).where(Contact.email == email.strip().lower())
    return session.scalars(statement).one_or_none()


def contact_view_by_email(session: Session, email: str, project: ProjectLike) -> ContactView | None:
    """The contact with `email` as expressions and templates see it, or None."""
    contact = contact_by_email(session, email)
    if contact is None:
        return None
    return contact.view(project.stages, project.properties)


def stage_history_of(session: Session, contact_id: int) -> list[StageHistory]:
    """A contact's stage moves, oldest first (explain, the sales inbox, handoff snapshots)."""
    return list(
        session.scalars(
            select(StageHistory)
            .where(StageHistory.contact_id == contact_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
    )


def enrollments_of(session: Session, contact_id: int) -> list[Enrollment]:
    """A contact's enrollments, oldest first."""
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.contact_id == contact_id)
            .order_by(Enrollment.started_at, Enrollment.id)
        )
    )


#: Enrollment statuses of a contact still inside its workflow.
RUNNING_STATUSES: tuple[str, ...] = ("active", "waiting")


def running_enrollments_by_step(session: Session, workflow: str) -> dict[str | None, int]:
    """How many running enrollments of `workflow` stand on each step (`nurture graph`).

    The key is the step id, None for enrollments not yet on their first step.
    One grouped SELECT: the graph must stay cheap on a database of millions.
    """
    statement = (
        select(Enrollment.step, func.count())
        .where(Enrollment.workflow == workflow, Enrollment.status.in_(RUNNING_STATUSES))
        .group_by(Enrollment.step)
    )
    return {step: int(count) for step, count in session.execute(statement)}
