"""Sales accounts (`accounts`, `account_sessions`, `account_links`, `login_throttle`):
every statement the sign-in and the account commands run.

Sessions and links are looked up by the SHA-256 of their token (the caller
hashes); a failed sign-in is counted with one upsert, so two guesses at once
both count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, case, delete, func, select, update
from sqlalchemy.orm import Session

from nurture.store.models import Account, AccountLink, AccountSession, LoginThrottle
from nurture.store.sql import among, insert_ignore

_throttle = cast(Table, LoginThrottle.__table__)


# --- accounts ---------------------------------------------------------------------------


def account_by_email(session: Session, email: str) -> Account | None:
    return session.scalars(select(Account).where(Account.email == email)).first()


def account_by_id(session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def all_accounts(session: Session) -> Sequence[Account]:
    """Every account, by email."""
    return session.scalars(select(Account).order_by(Account.email)).all()


def accounts_by_email(session: Session, emails: Iterable[str]) -> dict[str, Account]:
    """The accounts among `emails` (canonical forms), by email."""
    wanted = {e for e in emails if e}
    if not wanted:
        return {}
    found = session.scalars(select(Account).where(among(session, Account.email, wanted)))
    return {account.email: account for account in found}


def active_accounts(session: Session) -> Sequence[Account]:
    """Accounts not disabled, by name: who a handoff may be given to."""
    return session.scalars(
        select(Account).where(Account.disabled_at.is_(None)).order_by(Account.name)
    ).all()


def add_account(session: Session, account: Account) -> Account:
    session.add(account)
    session.flush()
    return account


# --- sessions -----------------------------------------------------------------------------


def insert_session(session: Session, row: AccountSession) -> None:
    session.add(row)
    session.flush()


def session_by_id(session: Session, session_id: str) -> tuple[AccountSession, Account] | None:
    """A stored session and its account."""
    found = session.execute(
        select(AccountSession, Account)
        .join(Account, Account.id == AccountSession.account_id)
        .where(AccountSession.id == session_id)
    ).first()
    return None if found is None else (found[0], found[1])


def touch_session(session: Session, session_id: str, now: datetime) -> None:
    session.execute(
        update(AccountSession).where(AccountSession.id == session_id).values(seen_at=now)
    )


def delete_session(session: Session, session_id: str) -> None:
    session.execute(delete(AccountSession).where(AccountSession.id == session_id))


def delete_sessions_of(session: Session, account_id: int) -> int:
    """Every session of the account ended; how many there were."""
    result = session.execute(delete(AccountSession).where(AccountSession.account_id == account_id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_stale_sessions(session: Session, expired_before: datetime, idle_since: datetime) -> None:
    """Sessions past their absolute expiry, or idle since before `idle_since`."""
    session.execute(
        delete(AccountSession).where(
            (AccountSession.expires_at <= expired_before) | (AccountSession.seen_at <= idle_since)
        )
    )


def count_sessions_of(session: Session, account_id: int) -> int:
    return int(
        session.scalar(select(func.count()).where(AccountSession.account_id == account_id)) or 0
    )


# --- one-time links ---------------------------------------------------------------------------


def insert_link(session: Session, link: AccountLink) -> None:
    session.add(link)
    session.flush()


def link_by_id(session: Session, link_id: str) -> AccountLink | None:
    return session.get(AccountLink, link_id)


def delete_links_for(session: Session, email: str) -> None:
    """Every unused link of this address: a new one, or its use, voids the others."""
    session.execute(delete(AccountLink).where(AccountLink.email == email))


def delete_expired_links(session: Session, now: datetime) -> None:
    session.execute(delete(AccountLink).where(AccountLink.expires_at <= now))


# --- failed sign-ins --------------------------------------------------------------------------


def throttle(session: Session, key: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, key)


def count_failure(session: Session, key: str, now: datetime, restart_before: datetime) -> int:
    """One more failure under `key` (a count whose last failure is older than
    `restart_before` starts again at 1); the count after it."""
    session.execute(
        insert_ignore(
            session, _throttle, {"key": key, "failures": 0, "last_failure_at": now}, ["key"]
        )
    )
    row = _throttle.c
    statement = (
        update(_throttle)
        .where(row.key == key)
        .values(
            failures=case((row.last_failure_at < restart_before, 1), else_=row.failures + 1),
            last_failure_at=now,
        )
        .returning(row.failures)
    )
    return int(session.execute(statement).scalar_one())


def lock(session: Session, key: str, now: datetime) -> None:
    session.execute(update(_throttle).where(_throttle.c.key == key).values(locked_at=now))


def clear_throttle(session: Session, key: str) -> None:
    """The failures under `key` forgotten, its lockout lifted."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
