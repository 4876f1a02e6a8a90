"""Signing in to the sales inbox: the guess limits, and the server-side sessions.

Failed sign-ins are counted per account address and per client address.
Past a few free failures each needs a wait before the next attempt, doubling
every time (1 s, 2 s, 4 s … `MAX_DELAY`); an attempt inside the wait is
refused without the password even being checked, so a guesser gets nowhere,
quickly (issue #16: 300 wrong keys in 0.3 s, then the right one accepted).
`LOCK_AFTER` failures in a row lock the account until its owner uses a reset
link or an admin unlocks it; a client address is never locked (an office
shares one), and its count starts again after `ADDRESS_WINDOW` without a
failure. The counts are rows (`login_throttle`), so every web process sees
them. Unknown addresses are counted like real ones: the answers do not tell
which accounts exist.

A session is a row whose id is the SHA-256 of the cookie's random token. It
ends at logout (the row goes), when the account is disabled or its password
set (every row of the account goes), after `IDLE_TIMEOUT` without a request,
and `SESSION_TTL` after sign-in whatever the activity.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from nurture.lifecycle.accounts import Person, password_matches, throttle_key, token_id
from nurture.store import accounts as store
from nurture.store.models import Account, AccountSession

#: Failures without any wait, per account and per client address.
ACCOUNT_FREE = 5
ADDRESS_FREE = 20
#: Consecutive failures that lock an account.
LOCK_AFTER = 20
MAX_DELAY = timedelta(minutes=15)
#: A client address's count starts again after this long without a failure.
ADDRESS_WINDOW = timedelta(hours=1)
#: The absolute lifetime of a session, and how long one lasts without a request.
SESSION_TTL = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(hours=4)
#: `seen_at` is written at most this often (not on every page view).
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: a session token, or why not (`refused`: ``invalid``,
    ``wait`` with `retry_after` seconds, or ``locked``)."""

    account: Person | None = None
    token: str | None = None
    refused: str | None = None
    retry_after: int = 0


def delay(failures: int, free: int) -> timedelta:
    """How long to wait after `failures` failures before the next attempt."""
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 20)), MAX_DELAY)


def _wait(session: Session, key: str, free: int, now: datetime, window: timedelta | None) -> int:
    row = store.throttle(session, key)
    if row is None or (window is not None and row.last_failure_at <= now - window):
        return 0
    until = row.last_failure_at + delay(row.failures, free)
    return max(0, int((until - now).total_seconds() + 0.999))


def _address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:300]


def sign_in(
    session: Session, email: str, password: str, address: str | None, now: datetime
) -> SignIn:
    """Check a password against the limits; a session token when it is the account's.

    Run in a transaction that commits even when the sign-in fails: the failure
    must be counted.
    """
    account_key, address_key = throttle_key(email), _address_key(address)
    throttled = store.throttle(session, account_key)
    if throttled is not None and throttled.locked_at is not None:
        return SignIn(refused="locked")
    wait = max(
        _wait(session, account_key, ACCOUNT_FREE, now, None),
        _wait(session, address_key, ADDRESS_FREE, now, ADDRESS_WINDOW),
    )
    if wait:
        return SignIn(refused="wait", retry_after=wait)
    account = store.account_by_email(session, account_key.removeprefix("account:"))
    if not password_matches(account, password):
        failures = store.count_failure(session, account_key, now, now - timedelta(days=3650))
        store.count_failure(session, address_key, now, now - ADDRESS_WINDOW)
        if failures >= LOCK_AFTER:
            store.lock(session, account_key, now)
            return SignIn(refused="locked")
        return SignIn(refused="invalid")
    assert account is not None
    store.clear_throttle(session, account_key)
    return SignIn(account=Person.of(account), token=open_session(session, account, now))


def open_session(session: Session, account: Account, now: datetime) -> str:
    """A new session for `account`; the cookie's token (only its hash is stored)."""
    store.delete_stale_sessions(session, now, now - IDLE_TIMEOUT)
    token = secrets.token_urlsafe(32)
    store.insert_session(
        session,
        AccountSession(
            id=token_id(token),
            account_id=account.id,
            created_at=now,
            seen_at=now,
            expires_at=now + SESSION_TTL,
        ),
    )
    return token


@dataclass(frozen=True)
class Current:
    """A live session: its id (the token's hash) and who it is."""

    id: str
    account: Person


def current(session: Session, token: str | None, now: datetime) -> Current | None:
    """The live session of this cookie token, or None (unknown, ended, idle, expired,
    account disabled); its `seen_at` moves on."""
    if not token or len(token) > 200:
        return None
    session_id = token_id(token)
    found = store.session_by_id(session, session_id)
    if found is None:
        return None
    row, account = found
    if (
        account.disabled_at is not None
        or row.expires_at <= now
        or row.seen_at <= now - IDLE_TIMEOUT
    ):
        store.delete_session(session, session_id)
        return None
    if row.seen_at <= now - TOUCH_EVERY:
        store.touch_session(session, session_id, now)
    return Current(session_id, Person.of(account))


def end(session: Session, session_id: str) -> None:
    store.delete_session(session, session_id)
