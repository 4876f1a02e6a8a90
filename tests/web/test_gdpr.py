"""GDPR: export everything about a person; erase it, keeping anonymised facts and a
hashed suppression that a later import, event or API call cannot get around."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.store.models import (
    Contact,
    Enrollment,
    Event,
    Handoff,
    Notification,
    ScoreEntry,
    Send,
    StageHistory,
)
from nurture.tools.privacy import erase_person, export_person
from tests.web.conftest import START, Web, anne_welcome

ANNE = "anne@example.com"


def _visit_and_click(web: Web) -> None:
    """Anne visits the pricing page (with her IP in the raw payload) and clicks."""
    response = web.client.post(
        "/v1/events",
        headers=web.auth,
        json={
            "id": "visit-1",
            "type": "page.visited",
            "at": clock.now().isoformat(),
            "contact": {"email": ANNE},
            "properties": {"url": "https://example.com/pricing?email=anne@example.com"},
        },
    )
    assert response.status_code == 200
    click = web.link(anne_welcome(web), "/t/c/")
    web.move_clock(minutes=30)  # a person reads later than a scanner
    assert web.client.get(click).status_code == 302


def _add_handoff(web: Web) -> None:
    """A handoff and notifications about Anne, plus a digest that lists her."""
    anne = web.contact(ANNE)
    with web.sessions.begin() as session:
        handoff = Handoff(
            contact_id=anne.id,
            status="rejected",
            owner="alice@example.com",
            reason="Anne Martin n'a pas de budget",
            snapshot={
                "contact": {
                    "email": ANNE,
                    "name": "Anne Martin",
                    "company": "Atelier",
                    "stage": "lead",
                    "properties": {"industry": "btp"},
                },
                "timeline": [{"at": START.isoformat(), "type": "page.visited", "url": "https://x"}],
                "last_content": {"at": START.isoformat(), "type": "page.visited", "title": "T"},
                "emails": [{"at": None, "template": "lead/welcome", "subject": "Bienvenue Anne"}],
            },
            actions=[{"at": START.isoformat(), "action": "rejected", "by": "alice", "reason": "r"}],
        )
        session.add(handoff)
        session.flush()
        for key, contact_id, payload in (
            ("h1", anne.id, {"contact": {"email": ANNE}}),
            ("digest", None, {"leads": [{"email": ANNE.upper()}, {"email": "bob@example.com"}]}),
        ):
            session.add(
                Notification(
                    dedupe_key=key,
                    kind="email",
                    topic="handoff.created",
                    target="alice@example.com",
                    contact_id=contact_id,
                    handoff_id=handoff.id if contact_id else None,
                    payload=payload,
                    status="pending",
                    next_attempt_at=START,
                    log=[],
                )
            )


def test_export_holds_everything_about_the_person(web: Web) -> None:
    _visit_and_click(web)
    _add_handoff(web)
    with web.sessions() as session:
        data = export_person(session, " Anne@Example.com", clock.now())
    json.dumps(data)  # JSON-ready as it is
    assert data["email"] == ANNE
    assert data["contact"]["email"] == ANNE and data["contact"]["first_name"] == "Anne"
    assert data["consent"]["status"] == "unknown"
    assert {e["type"] for e in data["events"]} >= {"page.visited", "email.clicked"}
    visit = next(e for e in data["events"] if e["event_id"] == "visit-1")
    assert visit["raw"]["properties"]["url"].startswith("https://example.com/pricing")
    assert [s["template"] for s in data["sends"]] == ["lead/welcome"]
    assert data["sends"][0]["subject"] == "Bienvenue pour Atelier"
    assert [h["to_stage"] for h in data["stage_history"]] == ["lead"]
    assert [e["workflow"] for e in data["enrollments"]] == ["lead-nurture"]
    assert data["score_ledger"]  # the click scored
    assert data["handoffs"][0]["snapshot"]["contact"]["name"] == "Anne Martin"
    assert [n["dedupe_key"] for n in data["notifications"]] == ["h1"]
    assert data["suppression"] is None


def test_erase_anonymises_but_keeps_the_facts_reports_are_made_of(web: Web) -> None:
    _visit_and_click(web)
    _add_handoff(web)
    anne_id = web.contact(ANNE).id

    def counts() -> dict[str, Any]:
        with web.sessions() as session:
            return {
                model.__name__: session.scalar(
                    select(func.count()).select_from(model).where(model.contact_id == anne_id)
                )
                for model in (Event, Send, ScoreEntry, StageHistory, Enrollment, Handoff)
            } | {
                "points": session.scalar(
                    select(func.sum(ScoreEntry.points)).where(ScoreEntry.contact_id == anne_id)
                )
            }

    before = counts()
    with web.sessions.begin() as session:
        done = erase_person(session, ANNE, clock.now())
    assert done.contact_id == anne_id and done.enrollments_ended == 1
    assert counts() == before

    with web.sessions() as session:
        anne = session.get(Contact, anne_id)
        assert anne is not None
        assert anne.email == f"erased-{anne_id}@invalid"
        assert (anne.first_name, anne.last_name, anne.company, anne.timezone) == (None,) * 4
        assert (anne.properties, anne.tags, anne.consent_proof) == ({}, [], None)
        assert (anne.consent_status, anne.suppression_reason) == ("withdrawn", "erased")
        assert anne.erased_at == clock.now() and anne.stage == "lead"
        events = session.scalars(select(Event).where(Event.contact_id == anne_id)).all()
        assert all(e.raw is None for e in events)
        assert all(set(e.properties) <= {"send_id", "workflow", "step", "template"} for e in events)
        [send] = session.scalars(select(Send).where(Send.contact_id == anne_id)).all()
        assert (send.subject, send.status, send.template) == (None, "sent", "lead/welcome")
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.contact_id == anne_id)
        ).one()
        assert (enrollment.status, enrollment.exit_reason) == ("exited", "erased")
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.reason is None and handoff.owner == "alice@example.com"
        assert handoff.snapshot is not None
        assert handoff.snapshot["contact"] == {
            "email": anne.email,
            "name": None,
            "company": None,
            "stage": "lead",
            "properties": {},
        }
        assert handoff.snapshot["timeline"] == [{"at": START.isoformat(), "type": "page.visited"}]
        assert handoff.snapshot["emails"][0]["subject"] is None
        assert handoff.actions == [{"at": START.isoformat(), "action": "rejected", "by": "alice"}]
        about, digest = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert (about.payload, about.status) == ({"erased": True}, "failed")
        assert digest.payload["leads"][0]["email"] == anne.email
        assert digest.status == "pending"
        everything = json.dumps(
            [
                [e.properties for e in events],
                handoff.snapshot,
                about.payload,
                digest.payload,
            ]
        ).lower()
        assert "anne" not in everything.replace(f"erased-{anne_id}", "")
        [entry] = suppression.entries(session)
    assert entry.email is None and entry.reason == "erased"
    assert entry.email_hash == hashlib.sha256(ANNE.encode()).hexdigest()
    with web.sessions() as session:
        exported = export_person(session, ANNE, clock.now())
    assert exported["contact"] is None and exported["suppression"]["reason"] == "erased"


def test_an_erased_address_comes_back_suppressed_by_import_event_or_api(web: Web) -> None:
    with web.sessions.begin() as session:
        erase_person(session, ANNE, clock.now())
        erase_person(session, "zoe@example.com", clock.now())  # never a contact: hash only
        erase_person(session, "yann@example.com", clock.now())
    web.import_rows("email,first_name,stage\nAnne@example.com,Anne,lead\n")
    event = {
        "id": "visit-zoe",
        "type": "page.visited",
        "at": clock.now().isoformat(),
        "contact": {"email": "zoe@example.com"},
    }
    assert web.client.post("/v1/events", headers=web.auth, json=event).status_code == 200
    upsert = {"email": "yann@example.com", "stage": "lead"}
    response = web.client.post("/v1/contacts", headers=web.auth, json=upsert)
    assert response.status_code == 200
    assert "suppression list (erased)" in response.json()["items"][0]["warnings"][0]
    for email in (ANNE, "zoe@example.com", "yann@example.com"):
        contact = web.contact(email)
        assert (contact.suppression_reason, contact.erased_at) == ("erased", None), email
    web.at(START + timedelta(days=3))
    web.tick()
    assert len(web.sent_to(ANNE)) == 1  # the welcome before she was erased, nothing after
    assert web.sent_to("yann@example.com") == []
    assert len(web.sent_to("bob@example.com")) == 2


def test_an_email_claimed_before_the_erasure_is_not_sent(web: Web) -> None:
    web.at(START + timedelta(days=2, hours=1))
    web.engine.advance(web.engine.claim_due(), deliver=False)
    with web.sessions.begin() as session:
        erase_person(session, ANNE, clock.now())
    web.engine.deliver()
    web.at(START + timedelta(days=3))
    web.engine.deliver()
    assert len(web.sent_to(ANNE)) == 1
    assert len(web.sent_to("bob@example.com")) == 2
    with web.sessions() as session:
        skipped = session.scalars(select(Send).where(Send.status == "skipped")).one()
    assert skipped.error == "erased"
