"""The suppression list (`suppressions`), by address hash; `nurture.delivery.suppression`
says what goes on it and why."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from nurture.store.models import Suppression
from nurture.store.sql import insert_ignore

_suppressions = cast(Table, Suppression.__table__)


def insert_entry(session: Session, values: Mapping[str, Any]) -> bool:
    """Add an entry unless its hash is listed already (the first reason stays); whether
    it was added."""
    result = session.execute(insert_ignore(session, _suppressions, dict(values), ["email_hash"]))
    return bool(getattr(result, "rowcount", 0))


def delete_entries(session: Session, digest: str, reasons: Collection[str] | None) -> bool:
    """Remove the hash's entry (only if its reason is one of `reasons`, when given)."""
    statement = delete(Suppression).where(Suppression.email_hash == digest)
    if reasons is not None:
        statement = statement.where(Suppression.reason.in_(list(reasons)))
    return bool(getattr(session.execute(statement), "rowcount", 0))


def reasons_by_hash(session: Session, digests: Collection[str]) -> dict[str, str]:
    """Hash → reason, for the listed ones among `digests` (1,000 per query)."""
    found: dict[str, str] = {}
    keys = list(digests)
    for start in range(0, len(keys), 1000):  # bound the IN list
        rows = session.execute(
            select(Suppression.email_hash, Suppression.reason).where(
                Suppression.email_hash.in_(keys[start : start + 1000])
            )
        )
        for digest, reason in rows:
            found[digest] = reason
    return found


def forget_address(session: Session, digest: str) -> None:
    """Keep the entry, drop the address in clear (an erasure)."""
    session.execute(update(Suppression).where(Suppression.email_hash == digest).values(email=None))


def list_entries(session: Session, reason: str | None = None) -> Sequence[Suppression]:
    query = select(Suppression).order_by(Suppression.created_at, Suppression.id)
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    return session.scalars(query).all()


def entry_by_hash(session: Session, digest: str) -> Suppression | None:
    return session.scalars(select(Suppression).where(Suppression.email_hash == digest)).first()
