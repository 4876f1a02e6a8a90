"""Every body has a size limit, a refusal never echoes the input, and database
trouble is a JSON 503 with Retry-After, on every route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.errors import DatabaseUnavailable
from nurture.settings import Settings
from nurture.web.app import create_app
from tests.web.conftest import API_KEY, Web, anne_welcome, event_dict
from tests.web.sales_world import API_KEY as SALES_KEY
from tests.web.sales_world import SalesWorld, build, populate

AUTH = {"Authorization": f"Bearer {API_KEY}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def small_app(web: Web, limit: int = 4096) -> TestClient:
    settings = Settings(_env_file=None, api_keys=API_KEY, secret_key="k" * 32, max_body_bytes=limit)
    return TestClient(create_app(web.engine, settings), base_url="https://nurture.example.com")


def test_a_pause_form_larger_than_the_limit_is_413_before_it_is_read(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    client = small_app(web)
    response = client.post(f"{path}/pause", content="days=30&x=" + "a" * 10_000, headers=FORM)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 4096 bytes"}
    assert web.contact("anne@example.com").paused_until is None
    # Streamed without a length, the same once the limit is passed.
    chunks = (b"a" * 1024 for _ in range(10))
    streamed = client.post(f"{path}/pause", content=chunks, headers=FORM)
    assert streamed.status_code == 413
    assert client.post(f"{path}/pause", content="days=30", headers=FORM).status_code == 200


def test_every_route_is_covered_by_the_limit(web: Web) -> None:
    client = small_app(web)
    big = "x" * 5000
    for path in ("/v1/events", "/v1/contacts", "/v1/handoffs/1/accept", "/v1/webhooks/generic"):
        response = client.post(
            path, content=big, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status_code == 413, path


@pytest.fixture
def sales(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[SalesWorld]:
    world = build(tmp_path, sessions)
    with clock.using(world.clock):
        populate(world)
        world.push_to_sales()
        yield world


def test_a_refused_body_is_not_echoed_back(sales: SalesWorld) -> None:
    handoff = sales.handoff()
    assert handoff is not None
    client = TestClient(sales.app, base_url="https://nurture.example.com")
    reason = "z" * 1_000_000
    response = client.post(
        f"/v1/handoffs/{handoff.id}/reject",
        headers={"Authorization": f"Bearer {SALES_KEY}"},
        json={"reason": reason, "by": 7},
    )
    assert response.status_code == 422
    assert len(response.content) < 2000
    assert "zzzzzzzzzz" not in response.text


def test_database_trouble_is_a_json_503_with_retry_after(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise DatabaseUnavailable("the database is unreachable (OperationalError)")

    monkeypatch.setattr(web.ingestor, "ingest", down)
    response = web.client.post("/v1/events", headers=web.auth, json=event_dict())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"detail": "the database is unavailable for a moment; retry later"}
    monkeypatch.undo()
    assert web.client.post("/v1/events", headers=web.auth, json=event_dict()).status_code == 200


def test_properties_and_tags_of_the_wrong_json_type_are_refused_not_stored(web: Web) -> None:
    items = [
        {"email": "p1@example.com", "properties": [1, 2]},
        {"email": "p2@example.com", "properties": "zzz"},
        {"email": "p3@example.com", "tags": "abc"},
        {"email": "p4@example.com", "consent": False},
        {"email": "p5@example.com", "company": {"a": 1}},
        {"email": "ok@example.com", "tags": ["a"], "properties": {"x": 1}},
    ]
    response = web.client.post("/v1/contacts", headers=web.auth, json=items)
    assert response.status_code == 207
    reasons = [i.get("reason") for i in response.json()["items"]]
    assert reasons[:5] == [
        "properties must be an object",
        "properties must be an object",
        "tags must be a list of strings",
        "consent must be an object or a status",
        "company must be text",
    ]
    assert response.json()["items"][5]["status"] == "created"


def test_a_nul_in_a_query_is_a_422_listing_where(sales: SalesWorld) -> None:
    client = TestClient(sales.app, base_url="https://nurture.example.com")
    response = client.get(
        "/v1/handoffs?owner=C%00", headers={"Authorization": f"Bearer {SALES_KEY}"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "owner"] and "NUL" in error["msg"]


def test_the_schema_says_what_the_handoff_actions_refuse(web: Web) -> None:
    spec = web.client.get("/openapi.json").json()
    actor = spec["components"]["schemas"]["Actor"]["properties"]["by"]
    assert actor["minLength"] == 1 and "pattern" in actor
    for action in ("accept", "reject", "reopen"):
        assert "400" in spec["paths"][f"/v1/handoffs/{{handoff_id}}/{action}"]["post"]["responses"]
    allow = web.client.request("OPTIONS", "/u/anything").headers["Allow"]
    assert allow == "GET, POST"
