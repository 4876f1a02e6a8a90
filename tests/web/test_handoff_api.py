"""`/v1/handoffs`: list, read, accept, reject with a reason (recycling), reopen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.lifecycle.handoff.actions import HandoffConflict
from nurture.store import db
from nurture.store.handoffs import lock_handoff
from nurture.web import inbox
from tests.web.sales_world import API_KEY, SalesWorld, build, populate

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[SalesWorld]:
    w = build(tmp_path, sessions)
    with clock.using(w.clock):
        populate(w)
        w.push_to_sales()
        yield w


@pytest.fixture
def client(world: SalesWorld) -> Iterator[TestClient]:
    with TestClient(world.app, base_url="https://nurture.example.com") as c:
        yield c


def _id(world: SalesWorld) -> int:
    handoff = world.handoff()
    assert handoff is not None
    return handoff.id


def test_the_routes_need_an_api_key(world: SalesWorld, client: TestClient) -> None:
    hid = _id(world)
    for method, path in (
        ("GET", "/v1/handoffs"),
        ("GET", f"/v1/handoffs/{hid}"),
        ("POST", f"/v1/handoffs/{hid}/accept"),
        ("POST", f"/v1/handoffs/{hid}/reject"),
        ("POST", f"/v1/handoffs/{hid}/reopen"),
    ):
        response = client.request(method, path, headers={"X-API-Key": "wrong"})
        assert response.status_code == 401, path
    assert world.handoff() is not None and world.handoff().status == "open"  # type: ignore[union-attr]


def test_the_list_has_what_sales_triages_on(world: SalesWorld, client: TestClient) -> None:
    world.move_clock(hours=5)
    response = client.get("/v1/handoffs", headers=AUTH)
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item == {
        "id": _id(world),
        "status": "open",
        "owner": "alice@example.com",
        "contact": {
            "id": world.contact().id,
            "email": "anne@example.com",
            "name": "Anne Martin",
            "company": "Atelier Martin",
            "stage": "sql",
        },
        "score": 120.0,
        "temperature": "hot",
        "created_at": "2026-11-23T10:30:00+00:00",
        "sla_due_at": "2026-11-24T10:30:00+00:00",
        "overdue": False,
        "age_seconds": 5 * 3600,
        "due_in_seconds": 19 * 3600,
        "decided_by": None,
        "decided_at": None,
        "reason": None,
    }


def test_filters_by_status_and_owner(world: SalesWorld, client: TestClient) -> None:
    world.push_to_sales("bob@example.com")

    def emails(**params: str) -> list[str]:
        response = client.get("/v1/handoffs", headers=AUTH, params=params)
        assert response.status_code == 200, response.text
        return [i["contact"]["email"] for i in response.json()["items"]]

    assert emails() == ["anne@example.com", "bob@example.com"]  # most urgent first
    response = client.post(f"/v1/handoffs/{_id(world)}/accept", headers=AUTH)
    assert response.status_code == 200
    assert emails(status="open") == ["bob@example.com"]
    assert emails(status="accepted") == ["anne@example.com"]
    assert emails(status="rejected") == []
    # Open ones first, then decisions.
    assert emails(owner="ALICE@example.com") == ["bob@example.com", "anne@example.com"]
    assert emails(owner="bob@example.com") == []
    bad = client.get("/v1/handoffs", headers=AUTH, params={"status": "closed"})
    assert bad.status_code == 422


def test_past_its_sla_a_handoff_is_overdue_until_decided(
    world: SalesWorld, client: TestClient
) -> None:
    world.move_clock(hours=26)
    [item] = client.get("/v1/handoffs", headers=AUTH).json()["items"]
    assert item["overdue"] is True
    assert item["due_in_seconds"] == -2 * 3600
    assert client.post(f"/v1/handoffs/{_id(world)}/accept", headers=AUTH).status_code == 200
    [item] = client.get("/v1/handoffs", headers=AUTH).json()["items"]
    assert item["overdue"] is False


def test_one_handoff_has_everything(world: SalesWorld, client: TestClient) -> None:
    response = client.get(f"/v1/handoffs/{_id(world)}", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    snapshot = body["snapshot"]
    assert snapshot["score"]["total"] == 120.0
    assert set(snapshot["score"]["by_rule"].values()) == {60.0, 20.0, 40.0}
    assert snapshot["temperature"] == "hot"
    assert snapshot["last_content"]["title"] == "Étude de cas Batipro"
    assert [e["subject"] for e in snapshot["emails"]] == ["Bienvenue"]
    assert [h["to"] for h in snapshot["stage_history"]] == ["lead", "mql", "sql"]
    assert {e["type"] for e in snapshot["timeline"]} >= {"content.downloaded", "page.visited"}
    assert body["actions"] == [
        {"at": "2026-11-23T10:30:00+00:00", "action": "opened", "by": "nurture", "reason": "score"}
    ]
    assert body["now"]["stage"] == "sql"


@pytest.mark.parametrize("path", ["/v1/handoffs/999", "/v1/handoffs/999/accept"])
def test_an_unknown_handoff_is_404(client: TestClient, path: str) -> None:
    method = "POST" if path.endswith("accept") else "GET"
    response = client.request(method, path, headers=AUTH)
    assert response.status_code == 404
    assert "no handoff #999" in response.json()["detail"]


@pytest.mark.parametrize("action", ["reject", "reopen"])
def test_unknown_handoffs_are_404_for_every_action(client: TestClient, action: str) -> None:
    body = {"reason": "x"} if action == "reject" else None
    response = client.post(f"/v1/handoffs/999/{action}", headers=AUTH, json=body)
    assert response.status_code == 404


@pytest.mark.parametrize("hid", ["0", "-1", "x", str(2**63), "9" * 40])
def test_ids_out_of_range_are_refused_not_crashed(client: TestClient, hid: str) -> None:
    response = client.get(f"/v1/handoffs/{hid}", headers=AUTH)
    assert response.status_code == 422


def test_accept_defaults_to_the_api_as_who(world: SalesWorld, client: TestClient) -> None:
    hid = _id(world)
    response = client.post(f"/v1/handoffs/{hid}/accept", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"]) == ("accepted", "api")
    assert body["actions"][-1]["action"] == "accepted"
    assert body["actions"][-1]["by"] == "api"
    # Then nothing else goes: 409 with the reason, and nothing written.
    for action, payload in (("accept", {"by": "bob"}), ("reject", {"reason": "x"})):
        again = client.post(f"/v1/handoffs/{hid}/{action}", headers=AUTH, json=payload)
        assert again.status_code == 409, again.text
        assert "is accepted, not open" in again.json()["detail"]
    reopen = client.post(f"/v1/handoffs/{hid}/reopen", headers=AUTH)
    assert reopen.status_code == 409
    assert "only a rejected one reopens" in reopen.json()["detail"]
    handoff = world.handoff()
    assert handoff is not None and len(handoff.actions) == 2


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"by": "alice"},
        {"reason": ""},
        {"reason": "   "},
        {"reason": None},
        {"reason": 12},
        {"reason": "a\x00b"},
        {"reason": "x" * 2001},
        {"reason": "ok", "by": ""},
        ["reason"],
    ],
)
def test_a_rejection_needs_a_reason(world: SalesWorld, client: TestClient, body: Any) -> None:
    response = client.post(f"/v1/handoffs/{_id(world)}/reject", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    handoff = world.handoff()
    assert handoff is not None and handoff.status == "open"
    assert world.contact().stage == "sql"


def test_a_rejection_recycles_the_contact_and_is_traced(
    world: SalesWorld, client: TestClient
) -> None:
    hid = _id(world)
    response = client.post(
        f"/v1/handoffs/{hid}/reject",
        headers=AUTH,
        json={"reason": "  Pas de budget avant le T3 ", "by": "alice@example.com"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["reason"], body["decided_by"]) == (
        "rejected",
        "Pas de budget avant le T3",
        "alice@example.com",
    )
    anne = world.contact()
    assert (anne.stage, anne.score) == ("lead", 60.0)
    assert world.enrollments()["recycle"] == "active"
    last = world.history()[-1]
    assert (last.from_stage, last.to_stage, last.cause) == ("sql", "lead", "handoff.rejected")
    assert last.details["reason"] == "Pas de budget avant le T3"
    assert last.details["by"] == "alice@example.com"
    assert body["actions"][-1] == {
        "at": "2026-11-23T10:30:00+00:00",
        "action": "rejected",
        "by": "alice@example.com",
        "reason": "Pas de budget avant le T3",
    }
    assert body["now"]["stage_history"][-1]["reason"] == "Pas de budget avant le T3"

    # A rejected handoff reopens: open again, the contact back on sql.
    world.move_clock(hours=1)
    reopened = client.post(f"/v1/handoffs/{hid}/reopen", headers=AUTH, json={"by": "bob"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"
    assert reopened.json()["sla_due_at"] == "2026-11-24T11:30:00+00:00"
    assert [a["action"] for a in reopened.json()["actions"]] == ["opened", "rejected", "reopened"]
    assert world.contact().stage == "sql"
    again = client.post(f"/v1/handoffs/{hid}/reopen", headers=AUTH)
    assert again.status_code == 409


@pytest.mark.postgres
def test_two_people_deciding_at_once_one_wins_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """The handoff's row is locked first: the second decision waits, then sees it decided."""
    db.upgrade(postgres_url)
    engine = db.create_engine_for(postgres_url)
    try:
        world = build(tmp_path, db.session_factory(engine))
        with clock.using(world.clock):
            populate(world)
            handoff_id = world.push_to_sales().id
            outcome: dict[str, object] = {}

            def second() -> None:
                try:
                    outcome["result"] = inbox.act(world.engine, handoff_id, "accept", "bob")
                except HandoffConflict as exc:
                    outcome["result"] = exc

            with world.engine.sessions.begin() as first:
                lock_handoff(first, handoff_id)
                racer = threading.Thread(target=second)
                racer.start()
                racer.join(timeout=0.5)
                assert racer.is_alive(), "the second decision must wait for the first"
                world.engine.handoffs.reject(first, handoff_id, "alice", "pas prêt", clock.now())
            racer.join(timeout=10)
            assert isinstance(outcome["result"], HandoffConflict)
            decided = world.handoff()
            assert decided is not None
            assert (decided.status, decided.decided_by) == ("rejected", "alice")
            assert [a["action"] for a in decided.actions] == ["opened", "rejected"]
    finally:
        engine.dispose()


def test_a_reason_may_hold_any_character_a_person_types(
    world: SalesWorld, client: TestClient
) -> None:
    reason = "Pas de budget 🙂 avant le T3 — 予算なし"
    response = client.post(
        f"/v1/handoffs/{_id(world)}/reject", headers=AUTH, json={"reason": reason}
    )
    assert response.status_code == 200, response.text
    assert response.json()["actions"][-1]["reason"] == reason


def test_a_reason_with_a_lone_surrogate_is_refused(world: SalesWorld, client: TestClient) -> None:
    """JSON may escape half a surrogate pair (`\\ud800`); no database can store it."""
    response = client.post(
        f"/v1/handoffs/{_id(world)}/reject",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b'{"reason": "a\\ud800b"}',
    )
    assert response.status_code == 422, response.text
    assert "unicode" in response.text
    handoff = world.handoff()
    assert handoff is not None and handoff.status == "open"
