"""Consent, pauses, the suppression list and the unsubscribe mailto, through the real engine.

The web world (tests/web/conftest.py): Anne and Bob are leads who got the
welcome email at START; the guide is due two days later.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.delivery.consent import mailto_token
from nurture.store.models import Enrollment, Send
from tests.web.conftest import CONFIG, START, Web, anne_welcome, write_project

GUIDE_DUE = START + timedelta(days=2, hours=1)


def _event(web: Web, **fields: Any) -> Any:
    data = {"at": clock.now().isoformat(), **fields}
    return web.client.post("/v1/events", headers=web.auth, json=data)


def _enrollment(web: Web, email: str) -> Enrollment:
    contact = web.contact(email)
    with web.sessions() as session:
        return session.scalars(select(Enrollment).where(Enrollment.contact_id == contact.id)).one()


def _explain(web: Web, email: str) -> Any:
    return web.client.get(f"/v1/contacts/{email}", headers=web.auth).json()


# --- pause ------------------------------------------------------------------------


def test_the_page_offers_a_pause_and_a_pause_defers_sends_until_it_ends(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    page = web.client.get(path).text
    for label in (
        "Pause de 30 jours",
        "Pause de 90 jours",
        "Pause for 30 days",
        "Pause for 90 days",
    ):
        assert label in page
    assert f'action="{path}/pause"' in page and 'name="days" value="90"' in page

    response = web.client.post(
        f"{path}/pause",
        content="days=30",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "C'est noté" in response.text and "before 2026-12-23" in response.text
    until = START + timedelta(days=30)
    anne = web.contact("anne@example.com")
    assert anne.paused_until == until and anne.consent_status == "unknown"
    [event] = web.events("email.paused")
    assert event.properties["days"] == 30 and event.source == "unsubscribe"

    web.at(GUIDE_DUE)
    web.tick()
    assert [m.subject for m in web.sent_to("anne@example.com")] == ["Bienvenue pour Atelier"]
    assert [m.subject for m in web.sent_to("bob@example.com")][-1] == "Le guide pour Batipro"
    enrollment = _enrollment(web, "anne@example.com")
    assert (enrollment.status, enrollment.next_run_at) == ("waiting", until)
    explained = _explain(web, "anne@example.com")
    assert explained["not_emailed_because"].startswith(f"paused until {until.isoformat()}")
    assert explained["contact"]["paused_until"] == until.isoformat()
    assert "paused nurture email" in explained["enrollments"][0]["next"]

    web.at(until)  # the pause is over: the deferred email goes out, nothing was dropped
    web.tick()
    assert [m.subject for m in web.sent_to("anne@example.com")][-1] == "Le guide pour Atelier"
    assert _explain(web, "anne@example.com")["contact"]["paused_until"] is None


def test_a_pause_after_the_claim_defers_the_claimed_email(web: Web) -> None:
    web.at(GUIDE_DUE)
    web.engine.advance(web.engine.claim_due(), deliver=False)  # the guides are claimed
    response = _event(
        web,
        id="pause-1",
        type="email.paused",
        contact={"email": "bob@example.com"},
        properties={"days": 90},
    )
    assert response.status_code == 200, response.text
    web.engine.deliver()
    assert len(web.sent_to("bob@example.com")) == 1
    assert len(web.sent_to("anne@example.com")) == 2
    until = GUIDE_DUE + timedelta(days=90)
    with web.sessions() as session:
        guide = session.scalars(
            select(Send).where(
                Send.step == "guide", Send.contact_id == web.contact("bob@example.com").id
            )
        ).one()
    assert (guide.status, guide.next_attempt_at, guide.attempts) == ("claimed", until, 0)

    web.at(until)
    web.tick()
    assert [m.subject for m in web.sent_to("bob@example.com")][-1] == "Le guide pour Batipro"


def test_a_pause_needs_a_valid_choice_and_a_valid_link(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in ("days=7", "days=", "", "days=30x"):
        assert web.client.post(f"{path}/pause", content=body, headers=form).status_code == 400
    assert web.client.post(f"{path[:-2]}/pause", content="days=30", headers=form).status_code == 404
    assert web.events("email.paused") == []
    bad = _event(
        web, id="p", type="email.paused", contact={"email": "bob@example.com"}, properties={}
    )
    assert bad.status_code == 422 and "properties.days" in bad.json()["items"][0]["reason"]


def test_an_unsubscribed_contact_who_asks_for_a_pause_stays_unsubscribed(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    web.client.post(path)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = web.client.post(f"{path}/pause", content="days=30", headers=form)
    assert "You are unsubscribed" in response.text
    assert web.contact("anne@example.com").consent_status == "withdrawn"
    assert web.events("email.paused") == []


# --- unsubscribe mailto --------------------------------------------------------------


def test_the_mailto_subject_carries_the_token_of_the_one_click_unsubscribe(web: Web) -> None:
    header = anne_welcome(web).parsed()["List-Unsubscribe"]
    url, mailto = (part.strip()[1:-1] for part in header.split(","))
    parts = urlsplit(mailto)
    assert (parts.scheme, parts.path) == ("mailto", "unsubscribe@localhost")
    subject = parse_qs(parts.query)["subject"][0]
    # What an inbound handler does with the mail it receives (a client may add "Re:").
    token = mailto_token(f"Re: {subject}")
    assert token is not None and url.endswith(f"/u/{token}")
    assert web.client.post(f"/u/{token}").status_code == 200
    assert web.contact("anne@example.com").consent_status == "withdrawn"
    assert mailto_token("hello") is None and mailto_token("unsubscribe-") is None


# --- consent -------------------------------------------------------------------------


@pytest.fixture
def strict(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Web]:
    """A project with `sending.require_consent: true` and its own contacts."""
    root = write_project(
        tmp_path / "strict",
        CONFIG
        + "sending:\n  from: bonjour@example.com\n  require_consent: true\n"
        + "  unsubscribe_mailto: desabonnement@example.com\n",
    )
    w = Web(root, sessions, tmp_path)
    with clock.using(w.clock):
        w.import_rows(
            "email,first_name,company,stage,consent,consent_basis\n"
            "anne@example.com,Anne,Atelier,lead,,\n"
            "bob@example.com,Bob,Batipro,lead,granted,\n"
            "dan@example.com,Dan,Dalle,lead,,intérêt légitime\n"
            "eve@example.com,Eve,Ebéniste,lead,legitimate interest,\n"
        )
        w.tick()
        with w.client:
            yield w


def test_require_consent_stops_contacts_without_an_explicit_basis(strict: Web) -> None:
    sent = sorted(m.email.to for m in strict.transport.messages)
    assert sent == ["bob@example.com", "dan@example.com", "eve@example.com"]
    enrollment = _enrollment(strict, "anne@example.com")
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "no-consent")
    explained = _explain(strict, "anne@example.com")
    assert explained["not_emailed_because"].startswith("no-consent")
    dan = strict.contact("dan@example.com")
    assert (dan.consent_status, dan.consent_basis) == ("unknown", "legitimate_interest")
    bob = strict.contact("bob@example.com")
    assert bob.consent_proof == {"source": "import:contacts-1.csv:3"}  # file and line
    [message] = strict.sent_to("bob@example.com")
    assert (
        "<mailto:desabonnement@example.com?subject=unsubscribe-"
        in (message.parsed()["List-Unsubscribe"])
    )


def test_a_form_grants_consent_with_its_proof(strict: Web) -> None:
    response = _event(
        strict,
        id="form-1",
        type="form.submitted",
        contact={"email": "anne@example.com"},
        properties={
            "consent": "granted",
            "form_id": "livre-blanc-btp",
            "ip": "203.0.113.7",
            "url": "https://example.com/livre-blanc",
            "consent_text": "J'accepte de recevoir des e-mails",
            "job": "gérante",
        },
    )
    assert response.status_code == 200, response.text
    anne = strict.contact("anne@example.com")
    assert (anne.consent_status, anne.consent_basis, anne.consent_source) == (
        "granted",
        "consent",
        "form:livre-blanc-btp",
    )
    assert anne.consent_at == START
    assert anne.consent_proof == {
        "source": "event:form-1",
        "at": START.isoformat(),
        "form_id": "livre-blanc-btp",
        "ip": "203.0.113.7",
        "url": "https://example.com/livre-blanc",
        "consent_text": "J'accepte de recevoir des e-mails",
    }
    explained = _explain(strict, "anne@example.com")
    assert explained["contact"]["consent_proof"]["ip"] == "203.0.113.7"
    assert explained["not_emailed_because"] == "not in any running workflow"


def test_a_form_creates_a_consenting_contact_and_bad_consent_values_are_refused(
    strict: Web,
) -> None:
    ok = _event(
        strict,
        id="form-2",
        type="form.submitted",
        contact={"email": "new@example.com"},
        properties={"consent": "granted", "form_id": "contact"},
    )
    assert ok.status_code == 200
    assert strict.contact("new@example.com").consent_status == "granted"
    bad = _event(
        strict,
        id="form-3",
        type="form.submitted",
        contact={"email": "anne@example.com"},
        properties={"consent": "yes please"},
    )
    assert bad.status_code == 422
    assert "properties.consent must be 'granted' or 'withdrawn'" in bad.json()["items"][0]["reason"]
    assert strict.contact("anne@example.com").consent_status == "unknown"


def test_only_the_contact_can_lift_an_unsubscribe(web: Web) -> None:
    web.client.post(web.link(anne_welcome(web), "/u/"))
    with web.sessions() as session:
        entry = suppression.entry(session, "anne@example.com")
    assert entry is not None and entry.reason == "unsubscribed"
    # An import saying "granted" does not resubscribe her…
    web.import_rows("email,consent\nanne@example.com,granted\n")
    assert web.contact("anne@example.com").consent_status == "withdrawn"
    # …but her own form does, and takes her off the list.
    _event(
        web,
        id="form-4",
        type="form.submitted",
        contact={"email": "anne@example.com"},
        properties={"consent": "granted", "form_id": "newsletter"},
    )
    assert web.contact("anne@example.com").consent_status == "granted"
    with web.sessions() as session:
        assert suppression.entry(session, "anne@example.com") is None
    # A form withdrawing consent is an unsubscribe.
    web.move_clock(minutes=5)
    _event(
        web,
        id="form-5",
        type="form.submitted",
        contact={"email": "bob@example.com"},
        properties={"consent": "withdrawn"},
    )
    assert web.contact("bob@example.com").consent_status == "withdrawn"
    assert _enrollment(web, "bob@example.com").exit_reason == "unsubscribed"


# --- suppression --------------------------------------------------------------------


def test_soft_bounces_suppress_at_the_limit_and_signs_of_life_reset_the_count(web: Web) -> None:
    def bounce(n: int) -> None:
        _event(
            web,
            id=f"soft-{n}",
            type="email.bounced",
            contact={"email": "anne@example.com"},
            properties={"bounce": "soft"},
        )

    bounce(1)
    bounce(2)
    assert web.contact("anne@example.com").soft_bounces == 2
    _event(web, id="open-1", type="email.opened", contact={"email": "anne@example.com"})
    assert web.contact("anne@example.com").soft_bounces == 0
    for n in (3, 4):
        bounce(n)
    assert web.contact("anne@example.com").suppressed_at is None
    bounce(5)
    anne = web.contact("anne@example.com")
    assert (anne.soft_bounces, anne.suppression_reason) == (3, "soft-bounced")
    assert _enrollment(web, "anne@example.com").exit_reason == "suppressed:soft-bounced"
    with web.sessions() as session:
        [entry] = suppression.entries(session)
    assert (entry.email, entry.reason, entry.source) == (
        "anne@example.com",
        "soft-bounced",
        "event:soft-5",
    )


def test_complaints_and_hard_bounces_go_on_the_list(web: Web) -> None:
    _event(web, id="c", type="email.complained", contact={"email": "anne@example.com"})
    _event(
        web,
        id="h",
        type="email.bounced",
        contact={"email": "bob@example.com"},
        properties={"bounce": "hard"},
    )
    with web.sessions() as session:
        listed = {e.email: e.reason for e in suppression.entries(session)}
    assert listed == {"anne@example.com": "complained", "bob@example.com": "bounced"}


def test_the_list_is_checked_at_send_time_even_without_the_contact_flag(web: Web) -> None:
    web.at(GUIDE_DUE)
    web.engine.advance(web.engine.claim_due(), deliver=False)
    with web.sessions.begin() as session:  # listed only: the contact row is untouched
        suppression.add(session, "Bob@Example.com ", "manual", clock.now())
    web.engine.deliver()
    assert len(web.sent_to("bob@example.com")) == 1
    assert web.contact("bob@example.com").suppressed_at is None
    with web.sessions() as session:
        send = session.scalars(select(Send).where(Send.status == "skipped")).one()
    assert send.error == "suppressed:manual"


def test_an_address_suppressed_in_advance_is_imported_suppressed(web: Web) -> None:
    with web.sessions.begin() as session:
        contact = suppression.suppress(
            session, "gus@example.com", "manual", clock.now(), note="salon", source="cli"
        )
    assert contact is None
    web.import_rows("email,first_name,stage\ngus@example.com,Gus,lead\n")
    gus = web.contact("gus@example.com")
    assert (gus.suppressed_at, gus.suppression_reason) == (START, "manual")
    web.tick()
    assert web.sent_to("gus@example.com") == []
    with web.sessions() as session:
        assert (
            session.scalars(select(Enrollment).where(Enrollment.contact_id == gus.id)).all() == []
        )
