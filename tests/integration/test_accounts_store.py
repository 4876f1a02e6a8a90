"""Sign-in state in the database, on SQLite and PostgreSQL: failures counted by one
upsert, the lockout, sessions ended on the server (nurture.lifecycle.signin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nurture.lifecycle import accounts, signin
from nurture.store import accounts as store

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(sessions_on_each_database: sessionmaker[Session]) -> sessionmaker[Session]:
    return sessions_on_each_database


def _account(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        account = accounts.add(session, "rep@example.com", "Rep", "sales", "Europe/Paris", NOW)
        link = accounts.valid_link(session, accounts.issue_link(session, account, NOW), NOW)
        assert link is not None
        accounts.use_link(session, link, "a long password", NOW)
    return "rep@example.com"


def test_failures_count_restart_and_lock(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        counts = [
            store.count_failure(session, "k", NOW, NOW - timedelta(hours=1)) for _ in range(3)
        ]
        assert counts == [1, 2, 3]
        later = NOW + timedelta(hours=2)
        assert store.count_failure(session, "k", later, later - timedelta(hours=1)) == 1
    email = _account(sessions)
    moment = NOW
    for failure in range(signin.LOCK_AFTER):
        moment += signin.delay(failure, signin.ACCOUNT_FREE)
        with sessions.begin() as session:
            outcome = signin.sign_in(session, email, "wrong", "10.0.0.1", moment)
        assert outcome.refused == ("locked" if failure == signin.LOCK_AFTER - 1 else "invalid")
    with sessions.begin() as session:
        assert (
            signin.sign_in(session, email, "a long password", "10.0.0.2", moment).refused
            == "locked"
        )
        accounts.unlock(session, email)
    with sessions.begin() as session:
        assert signin.sign_in(session, email, "a long password", "10.0.0.2", moment).token


def test_sessions_end_at_logout_disable_and_password_change(
    sessions: sessionmaker[Session],
) -> None:
    email = _account(sessions)
    tokens = []
    for _ in range(3):
        with sessions.begin() as session:
            outcome = signin.sign_in(session, email, "a long password", "10.0.0.1", NOW)
            assert outcome.token is not None
            tokens.append(outcome.token)
    with sessions.begin() as session:
        found = signin.current(session, tokens[0], NOW)
        assert found is not None and found.account.email == email
        signin.end(session, found.id)
    with sessions.begin() as session:
        assert signin.current(session, tokens[0], NOW) is None
        assert signin.current(session, tokens[1], NOW) is not None
        link = accounts.valid_link(
            session, accounts.issue_link(session, accounts.get(session, email), NOW), NOW
        )
        assert link is not None
        accounts.use_link(session, link, "another long one", NOW)
    with sessions.begin() as session:
        assert signin.current(session, tokens[1], NOW) is None
        assert signin.current(session, tokens[2], NOW) is None
        token = signin.sign_in(session, email, "another long one", None, NOW).token
    with sessions.begin() as session:
        accounts.disable(session, email, NOW)
    with sessions.begin() as session:
        assert signin.current(session, token, NOW) is None
