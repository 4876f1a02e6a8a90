"""Webhook replay protection in the database, shared by every web process."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.store import db
from nurture.store import webhook_replays as replays
from nurture.store.models import WebhookReplay
from tests.web.conftest import CONTACTS, MAILGUN_KEY, START, Web, anne_welcome, write_project


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions_on(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Sessions on each database, migrated to head."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sessions")
        return
    url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    engine = db.create_engine_for(url, pool_size=10)
    try:
        yield db.session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def web_on(tmp_path: Path, sessions_on: sessionmaker[Session]) -> Iterator[Web]:
    w = Web(write_project(tmp_path / "project"), sessions_on, tmp_path)
    with clock.using(w.clock):
        w.import_rows(CONTACTS)
        w.tick()
        w.set_up()
        with w.client:
            yield w


def _in_threads(count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_claims_of_one_key_take_it_once(sessions_on: sessionmaker[Session]) -> None:
    now = START

    def claim() -> bool:
        with sessions_on.begin() as session:
            return replays.claim(session, "mailgun:token-1", now, now + timedelta(minutes=10))

    assert sorted(_in_threads(8, claim)) == [False] * 7 + [True]
    with sessions_on.begin() as session:
        # expired: taken again, and the purge deletes only expired keys
        later = now + timedelta(minutes=11)
        assert replays.claim(session, "mailgun:token-1", later, later + timedelta(minutes=10))
        replays.claim(session, "old", now - timedelta(hours=1), now)
        assert replays.forget_expired(session, later) == 1
        assert session.scalar(select(func.count()).select_from(WebhookReplay)) == 1


def test_eight_concurrent_posts_of_one_mailgun_token_accept_exactly_one(web_on: Web) -> None:
    web = web_on
    send = web.send_of(anne_welcome(web))
    timestamp, token = str(int(clock.now().timestamp())), "t" * 50
    signature = hmac.new(
        MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    body = json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "id": "delivered-1",
                "event": "delivered",
                "timestamp": clock.now().timestamp() - 5,
                "message": {"headers": {"message-id": str(send.message_id)}},
                "user-variables": {"nurture_send_id": str(send.id)},
            },
        }
    ).encode()

    def post() -> int:
        return web.client.post(
            "/v1/webhooks/mailgun", content=body, headers={"Content-Type": "application/json"}
        ).status_code

    assert sorted(_in_threads(8, post)) == [200] + [401] * 7
    assert [e.event_id for e in web.events()] == ["mailgun:delivered-1"]
