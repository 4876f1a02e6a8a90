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
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstanceState, Session, attributes

from nurture.addresses import normalise_email
from nurture.contacts.view import ContactView
from nurture.store.models import (
    Contact,
    StageHistory,
    UTCDateTime,
)
from nurture.store.sql import among, json_rows, on_postgresql

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


def contact_by_email(session: Session, email: str) -> Contact | None:
    """The contact with `email`, compared in its normal form (`canonical_email`)."""
    statement = select(Contact).where(Contact.email == normalise_email(email))
    return session.scalars(statement).one_or_none()


def contact_view_by_email(session: Session, email: str, project: ProjectLike) -> ContactView | None:
    """The contact with `email` as expressions and templates see it, or None."""
    contact = contact_by_email(session, email)
    if contact is None:
        return None
    return contact.view(project.stages, project.properties)


def _pg_type(column: Any) -> str:
    kind = column.type
    if isinstance(kind, JSON):
        return "jsonb"
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, Integer | BigInteger):
        return "int8"
    return "text"


#: Every contact column a batch may change, with its type in `jsonb_to_recordset`.
_WRITTEN: dict[str, str] = {
    column.key: _pg_type(column)
    for column in _contacts.columns
    if column.key not in ("id", "created_at", "updated_at")
}


_WRITTEN_KEYS = frozenset(_WRITTEN)


def save_contacts(session: Session, contacts: Iterable[Contact], now: datetime) -> int:
    """Write what changed on these contacts, one statement per set of changed columns.

    The ORM would write them too, but one UPDATE per contact at every autoflush:
    half of a batch's statements. Contacts still in the session are told their
    values are stored, so no flush repeats them; detached ones (`loose_contacts`)
    need not be. Returns how many contacts were written.
    """
    groups: dict[tuple[str, ...], list[InstanceState[Contact]]] = {}
    for contact in contacts:
        state = attributes.instance_state(contact)
        if not state.modified or state.key is None:
            continue  # unchanged, or not yet inserted (the flush will insert it whole)
        changed = _WRITTEN_KEYS.difference(state.unmodified_intersection(_WRITTEN_KEYS))
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append(state)
    written = 0
    for columns, states in groups.items():
        # The instance dicts, not the attributes: no instrumentation per value read.
        rows = [{"id": s.dict["id"], **{name: s.dict[name] for name in columns}} for s in states]
        if on_postgresql(session):
            parameters = {"rows": json_rows(rows), "updated_at": now}
            session.execute(_update_contacts_statement(columns), parameters)
        else:
            session.execute(
                _update_contact_statement(columns),
                [
                    {"b_id": row["id"], "updated_at": now, **{name: row[name] for name in columns}}
                    for row in rows
                ],
            )
        for state, row in zip(states, rows, strict=True):
            if state.session_id is not None:
                contact = cast(Contact, state.obj())
                for name in columns:
                    attributes.set_committed_value(contact, name, row[name])
                attributes.set_committed_value(contact, "updated_at", now)
        written += len(states)
    return written


@lru_cache(maxsize=64)
def _update_contacts_statement(columns: tuple[str, ...]) -> Any:
    assignments = ", ".join(f"{name} = r.{name}" for name in columns)
    types = ", ".join(f"{name} {_WRITTEN[name]}" for name in columns)
    return text(
        f"UPDATE contacts SET {assignments}, updated_at = :updated_at"
        f" FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, {types})"
        " WHERE contacts.id = r.id"
    )


@lru_cache(maxsize=64)
def _update_contact_statement(columns: tuple[str, ...]) -> Any:
    return (
        update(_contacts)
        .where(_contacts.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in (*columns, "updated_at")})
    )


def loose_contacts(
    session: Session, emails: Iterable[str], ids: Iterable[int]
) -> tuple[list[Contact], list[Contact]]:
    """The contacts with these addresses, and with these ids, outside the session (unless
    it held them already: a caller's own object stays the caller's).

    A batch changes hundreds of contacts and writes them itself (`save_contacts`):
    in the session, each would cost the ORM's bookkeeping again at every flush
    until the transaction ends. They are read on the session's connection (same
    transaction) by a session of their own, closed at once, which leaves them
    detached; expunging them one by one costs more than loading them.
    """
    held = {obj.id: obj for obj in session.identity_map.values() if isinstance(obj, Contact)}
    loader = Session(bind=session.connection(), autoflush=False)
    try:
        found: list[list[Contact]] = []
        for column, values in ((_contacts.c.email, list(emails)), (_contacts.c.id, list(ids))):
            query = select(Contact).where(among(session, column, values))
            found.append(list(loader.scalars(query)) if values else [])
    finally:
        loader.close()
    by_email, by_id = ([held.get(c.id, c) for c in contacts] for contacts in found)
    return by_email, by_id


def contacts_by_id(session: Session, ids: Iterable[int]) -> dict[int, Contact]:
    return {
        c.id: c
        for c in session.scalars(select(Contact).where(among(session, Contact.id, set(ids))))
    }


def contact_by_id(session: Session, contact_id: int) -> Contact | None:
    return session.get(Contact, contact_id)


def add_contacts(session: Session, contacts: Sequence[Contact]) -> None:
    """Insert new contacts made as ORM objects (first events of unknown addresses); their
    ids are set on return."""
    session.add_all(contacts)
    session.flush()
