"""`/v1` API: keys, per-item event batches, contact upserts, explain, health."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from nurture.store.models import Enrollment
from tests.web.conftest import API_KEY, Web, event_dict

# --- API keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"X-API-Key": "wrong-key"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"X-API-Key": API_KEY[:-1]},
        {"X-API-Key": "clé-é".encode("latin-1")},
    ],
)
def test_the_api_needs_a_configured_key(web: Web, headers: Any) -> None:
    for method, path in (("POST", "/v1/events"), ("GET", "/v1/contacts/anne@example.com")):
        response = web.client.request(method, path, headers=headers, json=event_dict())
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert API_KEY not in response.text
    assert web.events("page.visited") == []


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_either_header_carries_the_key(web: Web, header: str) -> None:
    value = f"Bearer {API_KEY}" if header == "Authorization" else API_KEY
    response = web.client.get("/v1/contacts/anne@example.com", headers={header: value})
    assert response.status_code == 200
    assert web.client.get(
        "/v1/contacts/anne@example.com", headers={"X-API-Key": "other-key-0123456789"}
    ).is_success


def test_without_configured_keys_every_call_is_refused_with_the_remedy(web: Web) -> None:
    web.app.state.nurture.settings = web.settings.model_copy(update={"api_keys": " , "})
    response = web.client.get("/v1/contacts/anne@example.com", headers=web.auth)
    assert response.status_code == 401
    assert "NURTURE_API_KEYS" in response.json()["detail"]


# --- events ---------------------------------------------------------------------


def test_one_event_is_recorded_then_a_duplicate(web: Web) -> None:
    response = web.client.post("/v1/events", headers=web.auth, json=event_dict())
    assert response.status_code == 200
    assert response.json() == {
        "recorded": 1,
        "duplicate": 0,
        "rejected": 0,
        "items": [{"index": 0, "id": "evt-1", "status": "recorded", "reason": None}],
    }
    again = web.client.post("/v1/events", headers=web.auth, json=[event_dict()])
    assert again.status_code == 200
    assert again.json()["items"][0]["status"] == "duplicate"
    assert len(web.events("page.visited")) == 1


def test_a_bad_event_is_refused_alone_next_to_good_ones(web: Web) -> None:
    batch = [
        event_dict(id="good-1"),
        event_dict(id="bad-type", type="page.viewed"),
        event_dict(id="good-2", contact={"email": "new@example.com"}),
        event_dict(id="good-1"),  # the same id again in the batch
        "not an object",
        event_dict(id="bad-bounce", type="email.bounced", properties={}),
        event_dict(id="unknown-contact", type="email.opened", contact={"email": "x@example.com"}),
        event_dict(id="nul", properties={"url": "a\x00b"}),
    ]
    response = web.client.post("/v1/events", headers=web.auth, json=batch)
    assert response.status_code == 207
    body = response.json()
    assert [(i["index"], i["id"], i["status"]) for i in body["items"]] == [
        (0, "good-1", "recorded"),
        (1, "bad-type", "rejected"),
        (2, "good-2", "recorded"),
        (3, "good-1", "duplicate"),
        (4, None, "rejected"),
        (5, "bad-bounce", "rejected"),
        (6, "unknown-contact", "rejected"),
        (7, "nul", "rejected"),
    ]
    reasons = {i["id"]: i["reason"] for i in body["items"]}
    assert "unknown event type 'page.viewed'" in reasons["bad-type"]
    assert "bounce" in reasons["bad-bounce"]
    assert "never create" in reasons["unknown-contact"]
    assert "NUL" in reasons["nul"]
    assert (body["recorded"], body["duplicate"], body["rejected"]) == (2, 1, 5)
    # Only the good events went in (besides nurture's own stage.changed for the newcomer).
    recorded = [e.event_id for e in web.events() if e.source != "nurture"]
    assert sorted(recorded) == ["good-1", "good-2"]
    web.contact("new@example.com")  # created by its page visit


def test_a_batch_of_only_bad_events_is_422_and_applies_nothing(web: Web) -> None:
    response = web.client.post(
        "/v1/events", headers=web.auth, json=[event_dict(type="nope"), event_dict(at="yesterday")]
    )
    assert response.status_code == 422
    assert [i["status"] for i in response.json()["items"]] == ["rejected", "rejected"]
    assert web.events() == []


@pytest.mark.parametrize(
    ("content", "content_type", "status", "reason"),
    [
        (b'{"id": "x",', "application/json", 400, "malformed JSON"),
        (b'{"id": NaN}', "application/json", 400, "NaN is not valid JSON"),
        (b"[]", "application/json", 400, "empty list"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed JSON"),
        (json.dumps([event_dict()] * 1001).encode(), "application/json", 400, "at most 1000"),
        (json.dumps(event_dict()).encode(), "text/plain", 415, "application/json"),
        (json.dumps(event_dict()).encode(), "", 415, "application/json"),
        (b"id=1", "application/x-www-form-urlencoded", 415, "application/json"),
    ],
)
def test_a_request_that_is_not_a_batch_is_refused_whole(
    web: Web, content: bytes, content_type: str, status: int, reason: str
) -> None:
    headers = {**web.auth, "Content-Type": content_type}
    response = web.client.post("/v1/events", headers=headers, content=content)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    assert web.events() == []


def test_a_json_suffix_media_type_is_json(web: Web) -> None:
    headers = {**web.auth, "Content-Type": "application/vnd.nurture+json; charset=utf-8"}
    response = web.client.post("/v1/events", headers=headers, content=json.dumps(event_dict()))
    assert response.status_code == 200


def test_a_huge_body_is_413(web: Web) -> None:
    big = json.dumps(event_dict(properties={"x": "a" * (6 * 1024 * 1024)}))
    response = web.client.post(
        "/v1/events", headers={**web.auth, "Content-Type": "application/json"}, content=big
    )
    assert response.status_code == 413


def test_a_click_event_by_api_scores_and_shows_in_explain(web: Web) -> None:
    event = event_dict(id="c-1", type="email.clicked", properties={"step": "welcome"})
    assert web.client.post("/v1/events", headers=web.auth, json=event).status_code == 200
    ledger = web.client.get("/v1/contacts/anne@example.com", headers=web.auth).json()["score"]
    assert [(e["event"], e["points"]) for e in ledger["ledger"]] == [("c-1", 10.0)]


# --- contacts -------------------------------------------------------------------


def test_contacts_are_created_updated_and_left_unchanged_per_item(web: Web) -> None:
    batch = [
        {"email": " Dora@Example.com ", "company": "Dubois", "stage": "lead", "industry": "btp"},
        {"email": "carla@example.com", "stage": "lead"},
        {"email": "bob@example.com", "company": "Batipro"},
        {"email": "not-an-email", "first_name": "X"},
        {"email": "eve@example.com", "stage": "ceo", "employees": "many"},
        {"email": "dora@example.com", "company": "Twice"},
        {"first_name": "No email"},
        ["not", "an", "object"],
        {"email": "fanny@example.com", "score": 99},
    ]
    response = web.client.post("/v1/contacts", headers=web.auth, json=batch)
    assert response.status_code == 207, response.text
    body = response.json()
    assert [(i["email"], i["status"]) for i in body["items"]] == [
        ("dora@example.com", "created"),
        ("carla@example.com", "updated"),
        ("bob@example.com", "unchanged"),
        ("not-an-email", "rejected"),
        ("eve@example.com", "rejected"),
        ("dora@example.com", "rejected"),
        (None, "rejected"),
        (None, "rejected"),
        ("fanny@example.com", "created"),
    ]
    reasons = [i["reason"] for i in body["items"]]
    assert "invalid email" in reasons[3]
    assert "unknown stage 'ceo'" in reasons[4] and "invalid employees" in reasons[4]
    assert "appears earlier in this request (item 0)" in reasons[5]
    assert reasons[6] == "missing email"
    assert body["items"][8]["warnings"] == ["'score' is computed by nurture; ignored"]
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (2, 1, 1, 5)
    # The engine reacted in the same transaction: leads enrolled, fit scored.
    with web.sessions() as session:
        enrolled = set(session.scalars(select(Enrollment.contact_id)))
    assert {web.contact(e).id for e in ("dora@example.com", "carla@example.com")} <= enrolled
    assert web.contact("dora@example.com").fit_score == 20
    web.tick()
    assert [m.subject for m in web.sent_to("dora@example.com")] == ["Bienvenue pour Dubois"]
    assert [m.subject for m in web.sent_to("carla@example.com")] == ["Bienvenue pour Cabinet"]


def test_one_contact_upsert_and_a_withdrawn_consent_is_kept_with_a_warning(web: Web) -> None:
    new = {"email": "gus@example.com", "consent": {"status": "withdrawn"}}
    assert web.client.post("/v1/contacts", headers=web.auth, json=new).status_code == 200
    again = {"email": "gus@example.com", "consent": "granted", "company": "Gus SA"}
    response = web.client.post("/v1/contacts", headers=web.auth, json=again)
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["status"] == "updated"
    assert "consent stays withdrawn" in item["warnings"][0]
    assert web.contact("gus@example.com").consent_status == "withdrawn"


def test_a_single_invalid_contact_is_422(web: Web) -> None:
    response = web.client.post("/v1/contacts", headers=web.auth, json={"email": "@"})
    assert response.status_code == 422
    assert response.json()["items"][0]["reason"] == (
        "invalid email '@' (there must be something before the @-sign)"
    )


# --- explain, health --------------------------------------------------------------


def test_explain_returns_the_explanation(web: Web) -> None:
    response = web.client.get("/v1/contacts/ANNE@example.com", headers=web.auth)
    assert response.status_code == 200
    data = response.json()
    assert data["contact"]["email"] == "anne@example.com"
    assert data["contact"]["stage"] == "lead"
    assert [e["template"] for e in data["emails"]] == ["lead/welcome"]
    assert data["enrollments"][0]["workflow"] == "lead-nurture"
    assert "lead/guide" in data["enrollments"][0]["next"]


def test_explain_an_unknown_contact_is_404_with_the_reason(web: Web) -> None:
    response = web.client.get("/v1/contacts/nobody@example.com", headers=web.auth)
    assert response.status_code == 404
    assert response.json() == {"detail": "no contact with email 'nobody@example.com'"}


def test_health(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    assert web.client.get("/healthz").json() == {"status": "ok"}

    def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("down"))

    monkeypatch.setattr(web.engine, "sessions", broken)
    response = web.client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})


def test_docs_load_swagger_ui_from_this_server_without_internet(web: Web) -> None:
    page = web.client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no validator
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(assets) >= 2 and all(asset.startswith("/docs/assets/") for asset in assets)
    for asset in assets:
        loaded = web.client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 1000, asset
    assert "url: '/openapi.json'" in page.text
    assert web.client.get("/openapi.json").json()["info"]["title"] == "nurture"


def test_openapi_documents_every_route(web: Web) -> None:
    assert web.client.get("/docs").status_code == 200
    paths = web.client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/v1/events",
        "/v1/contacts",
        "/v1/contacts/{email}",
        "/v1/webhooks/{provider}",
        "/v1/handoffs",
        "/v1/handoffs/{handoff_id}",
        "/v1/handoffs/{handoff_id}/accept",
        "/v1/handoffs/{handoff_id}/reject",
        "/v1/handoffs/{handoff_id}/reopen",
        "/t/c/{token}",
        "/t/o/{token}.gif",
        "/t/nurture.js",
        "/t/s",
        "/u/{token}",
        "/u/{token}/pause",
        "/v/{token}",
        "/healthz",
        "/metrics",
    }
