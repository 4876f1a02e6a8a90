"""Every input boundary holds: an item the database or Python cannot hold is refused alone.

NUL characters, lone surrogates, non-finite or huge numbers and times with no
UTC instant, in the API's batches and in the import files, on SQLite and on
PostgreSQL (which refuses NUL and Infinity where SQLite would store them): each
bad item is refused with its reason, the good items next to it go in, and no
request answers 500.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.lifecycle.event_import import import_events
from nurture.settings import Settings
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.store.models import Contact, Event
from nurture.testing import Harness, write_project
from nurture.web.app import create_app

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = "boundary-test-key-0123456789"
CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
properties: {employees: number}
sending:
  from: "Équipe <bonjour@example.com>"
"""


class World(Harness):
    def __init__(self, root: Path, url: str) -> None:
        self.db = create_engine_for(url)
        super().__init__(load_project(root), session_factory(self.db), start=START)
        settings = Settings(_env_file=None, api_keys=KEY, secret_key="k" * 32)
        self.client = TestClient(create_app(self.engine, settings), raise_server_exceptions=True)

    def post(self, path: str, body: str) -> tuple[int, dict[str, object]]:
        answer = self.client.post(
            path,
            content=body.encode("utf-8", "surrogatepass"),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        return answer.status_code, answer.json()

    def count(self, model: type[Contact] | type[Event]) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url = request.getfixturevalue(
        "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    if request.param == "postgres":
        upgrade(url)
    w = World(write_project(tmp_path / "p", CONFIG), url)
    try:
        with clock.using(w.clock):
            w.import_csv("email,stage\nanne@example.com,lead\n")
            yield w
    finally:
        w.db.dispose()


def event(n: int, **fields: object) -> str:
    base = {
        "id": f"e{n}",
        "type": "page.visited",
        "at": START.isoformat(),
        "contact": {"email": "anne@example.com"},
        "properties": {"url": "https://example.com/"},
    }
    return json.dumps(base | fields)


def test_an_events_batch_keeps_its_good_items_next_to_every_kind_of_bad_one(world: World) -> None:
    bad = [
        event(2).replace('"url": "https://example.com/"', '"n": 1e400'),
        event(3).replace('"url": "https://example.com/"', '"n": -1e999'),
        event(4, at="0001-01-01T00:00:00+14:00"),
        event(5).replace("https://example.com/", "https://example.com/\\u0000"),
        event(6).replace("https://example.com/", "https://example.com/\\ud800"),
        event(7).replace('"url": "https://example.com/"', '"n": 123456789012345678901234567890'),
    ]
    body = "[" + ", ".join([event(1), *bad, event(8)]) + "]"
    status, result = world.post("/v1/events", body)
    assert status == 207, result
    items = result["items"]
    assert isinstance(items, list)
    assert [i["status"] for i in items] == ["recorded", *["rejected"] * 6, "recorded"]
    reasons = [i["reason"] for i in items[1:7]]
    assert "properties.n: number out of range" in reasons[0]
    assert "properties.n: number out of range" in reasons[1]
    assert "time out of range" in reasons[2]
    assert "NUL" in reasons[3] and "lone surrogates" in reasons[4]
    assert "out of range" in reasons[5]
    assert world.count(Event) == 2 + 1  # the two good ones, and the import's stage.changed


def test_a_contacts_batch_keeps_its_good_items_next_to_every_kind_of_bad_one(
    world: World,
) -> None:
    items = [
        '{"email": "ok1@example.com"}',
        '{"email": "big@example.com", "revenue": 1e400}',
        '{"email": "proof@example.com", "consent": {"status": "granted", "proof": {"x": -1e999}}}',
        '{"email": "old@example.com", "consent_at": "0001-01-01T00:00:00+14:00"}',
        '{"email": "nul@example.com", "company": "A\\u0000B"}',
        '{"email": "lone@example.com", "first_name": "\\ud800"}',
        '{"email": "ok2@example.com"}',
    ]
    status, result = world.post("/v1/contacts", "[" + ", ".join(items) + "]")
    assert status == 207, result
    statuses = [i["status"] for i in result["items"]]  # type: ignore[index]
    assert statuses == ["created", *["rejected"] * 5, "created"]
    with world.sessions() as session:
        emails = set(session.scalars(select(Contact.email)))
    assert emails == {"anne@example.com", "ok1@example.com", "ok2@example.com"}


def test_an_events_file_keeps_its_good_lines_and_names_every_bad_one(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        event(1).encode(),
        b'{"id": "latin", "type": "page.visited", "contact": {"email": "caf\xe9@example.com"}}',
        event(3).replace('"url": "https://example.com/"', '"n": 1e400').encode(),
        event(4).replace("https://example.com/", "https://example.com/\\u0000").encode(),
        event(5).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = import_events(world.ingestor, world.sessions, path)
    assert (report.recorded, report.rejected) == (2, 3)
    assert [p.line for p in report.problems] == [2, 3, 4]
    assert "not UTF-8" in report.problems[0].message
    assert "out of range" in report.problems[1].message
    assert "NUL" in report.problems[2].message


@pytest.mark.postgres
def test_backends_terminated_mid_stream_lose_no_acknowledged_event(
    tmp_path: Path, postgres_url: str
) -> None:
    """PostgreSQL kills every connection again and again while events arrive one by one:
    each answer is 200 (then the event is stored) or a JSON 503 with Retry-After, never
    a 500, and the server keeps answering the next request."""
    upgrade(postgres_url)
    world = World(write_project(tmp_path / "p", CONFIG), postgres_url)
    stop = threading.Event()

    def terminate() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            while not stop.wait(0.03):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

    killer = threading.Thread(target=terminate, daemon=True)
    answers: dict[str, int] = {}
    try:
        with clock.using(world.clock):
            world.import_csv("email,stage\nanne@example.com,lead\n")
            killer.start()
            # Until some events got through between the kills (a loaded machine makes
            # each request slower than the killer's pace, so a fixed count may see none).
            for n in range(3000):
                status, body = world.post("/v1/events", event(n))
                answers[f"e{n}"] = status
                if status == 503:
                    assert body == {
                        "detail": "the database is unavailable for a moment; retry later"
                    }
                statuses = list(answers.values())
                if n >= 300 and statuses.count(200) >= 20 and 503 in statuses:
                    break
        stop.set()
        killer.join()
        assert set(answers.values()) <= {200, 503}, answers
        acknowledged = {key for key, status in answers.items() if status == 200}
        assert acknowledged  # how many depends on the timing; none lost is what counts
        with clock.using(world.clock):
            assert world.post("/v1/events", event(999))[0] == 200  # still serving
        acknowledged.add("e999")
        with world.sessions() as session:
            stored = set(session.scalars(select(Event.event_id).where(Event.source == "api")))
        assert acknowledged <= stored
    finally:
        stop.set()
        world.db.dispose()


@pytest.mark.postgres
def test_a_value_the_database_refuses_is_one_error_without_the_rows_data(
    postgres_url: str,
) -> None:
    from sqlalchemy import text

    from nurture.errors import ValueRefused

    engine = create_engine_for(postgres_url)
    try:
        with pytest.raises(ValueRefused) as refused, engine.connect() as connection:
            connection.execute(text("SELECT CAST(:v AS integer)"), {"v": "anne@example.com"})
        message = str(refused.value)
        assert message.startswith("the database refused a value: invalid input syntax")
        assert "\n" not in message and "CONTEXT" not in message
        assert "anne@example.com" not in message
    finally:
        engine.dispose()


def test_a_contacts_file_keeps_its_good_rows_next_to_every_kind_of_bad_one(world: World) -> None:
    csv_report = world.import_csv(
        "email,company,employees\n"
        "ok1@example.com,A,12\n"
        "nul@example.com,A\x00B,3\n"
        "inf@example.com,C,1e400\n"
        "ok2@example.com,D,4\n",
        "contacts.csv",
    )
    assert (csv_report.created, [p.line for p in csv_report.rejected]) == (2, [3, 4])
    assert "NUL" in csv_report.rejected[0].message
    assert "invalid employees" in csv_report.rejected[1].message
    jsonl_report = world.import_csv(
        '{"email": "ok3@example.com"}\n'
        '{"email": "big@example.com", "revenue": 1e400}\n'
        '{"email": "lone@example.com", "first_name": "\\ud800"}\n'
        '{"email": "ok4@example.com"}\n',
        "contacts.jsonl",
    )
    assert (jsonl_report.created, [p.line for p in jsonl_report.rejected]) == (2, [2, 3])
    assert "revenue: number out of range" in jsonl_report.rejected[0].message
    assert "lone surrogates" in jsonl_report.rejected[1].message
    assert world.count(Contact) == 1 + 4
