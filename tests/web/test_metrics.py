"""`/metrics` reports what the database holds, in Prometheus' text format."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.settings import Settings
from nurture.store.models import Contact, Handoff
from nurture.web.app import create_app
from tests.web.conftest import BASE_URL, SIGNING_KEY, START, Web, event_dict

_LINE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(client: TestClient, **headers: str) -> dict[str, float]:
    """`name{labels}` → value, for every sample of the exposition."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            match = _LINE.match(line)
            assert match, line
            name, labels, value = match.groups()
            samples[f"{name}{{{labels}}}" if labels else name] = float(value)
    return samples


def test_figures_match_the_database(web: Web) -> None:
    figures = scrape(web.client)
    assert figures['nurture_sends_total{status="sent"}'] == 2
    assert figures['nurture_sends_total{status="failed"}'] == 0
    assert figures['nurture_sends_total{status="claimed"}'] == 0
    assert figures["nurture_sends_due"] == 0
    assert figures['nurture_enrollments{status="waiting"}'] == 2  # the 2-day wait
    assert figures["nurture_enrollments_due"] == 0
    assert figures["nurture_oldest_due_seconds"] == 0
    assert figures["nurture_handoffs_overdue"] == 0
    # Without Redis: no broker to ask, the queue reads empty and nothing fails.
    assert "nurture_redis_up" not in figures
    assert figures['nurture_queue_messages{queue="nurture"}'] == 0


def test_due_backlog_failures_and_events(web: Web) -> None:
    web.at(START + timedelta(days=3))  # the guide was due a day ago for both
    figures = scrape(web.client)
    assert figures["nurture_enrollments_due"] == 2
    assert figures["nurture_oldest_due_seconds"] == 86400

    web.transport.fail_next(1, transient=False)
    web.tick()
    response = web.client.post("/v1/events", json=event_dict(), headers=web.auth)
    assert response.status_code == 200
    figures = scrape(web.client)
    assert figures["nurture_enrollments_due"] == 0
    assert figures['nurture_sends_total{status="sent"}'] == 3
    assert figures['nurture_sends_total{status="failed"}'] == 1
    assert figures['nurture_events_total{type="page.visited"}'] == 1
    assert figures["nurture_events_recent"] == 1


def test_overdue_handoffs(web: Web) -> None:
    with web.sessions.begin() as session:
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
        now = START
        session.add_all(
            [
                Handoff(contact_id=ids[0], status="open", sla_due_at=now - timedelta(hours=1)),
                Handoff(contact_id=ids[1], status="open", sla_due_at=now + timedelta(hours=1)),
                Handoff(contact_id=ids[2], status="accepted", sla_due_at=now - timedelta(days=1)),
            ]
        )
    figures = scrape(web.client)
    assert figures['nurture_handoffs{status="open"}'] == 2
    assert figures['nurture_handoffs{status="accepted"}'] == 1
    assert figures["nurture_handoffs_overdue"] == 1


def _client(web: Web, **settings: str) -> TestClient:
    config = Settings(_env_file=None, secret_key=SIGNING_KEY, base_url=BASE_URL, **settings)  # type: ignore[arg-type]
    return TestClient(create_app(web.engine, config), base_url=BASE_URL)


def test_an_optional_bearer_token(web: Web) -> None:
    client = _client(web, metrics_token="scrape-token-0123")
    assert client.get("/metrics").status_code == 401
    bad = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert scrape(client, Authorization="Bearer scrape-token-0123")["nurture_sends_due"] == 0


def test_an_unreachable_redis_is_reported_not_fatal(web: Web) -> None:
    figures = scrape(_client(web, redis_url="redis://127.0.0.1:1/0"))
    assert figures["nurture_redis_up"] == 0
    assert figures['nurture_sends_total{status="sent"}'] == 2
