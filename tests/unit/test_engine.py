"""The engine on embedded SQLite with the capture transport, under a controlled clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.engine.enrollment import may_enroll
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle.importer import import_contacts
from nurture.store import enrollments as work
from nurture.store.models import Contact, Enrollment, Send
from nurture.testing import START, Harness
from nurture.tokens import Signer
from nurture.transports import CaptureTransport


@pytest.fixture
def harness(
    project_dir: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[Harness]:
    h = Harness(load_project(project_dir), sessions)
    with clock.using(h.clock):
        h.import_csv(
            "email,first_name,company,stage\n"
            "anne@example.com,Anne,Atelier <Dubreuil>,lead\n"
            "bob@example.com,Bob,Batipro,subscriber\n",
        )
        yield h


def test_a_lead_is_enrolled_and_gets_the_first_email_with_every_header(harness: Harness) -> None:
    harness.tick()
    assert harness.subjects("anne@example.com") == ["Bienvenue pour Atelier <Dubreuil>"]
    assert harness.subjects("bob@example.com") == []  # no subscriber workflow here

    [captured] = harness.transport.messages
    message = message_from_bytes(captured.data, policy=default_policy)
    assert message["From"] == "Équipe Exemple <bonjour@example.com>"
    assert message["Reply-To"] == "ventes@example.com"
    assert message["Subject"] == "Bienvenue pour Atelier <Dubreuil>"
    with harness.sessions() as session:
        send = session.scalars(select(Send)).one()
    assert message["X-Nurture-Send-Id"] == str(send.id)
    assert send.status == "sent" and send.message_id == message["Message-ID"]
    assert message["List-Unsubscribe"].startswith("<https://nurture.example.com/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    assert "Atelier &lt;Dubreuil&gt;" in html
    # Links go through signed click tracking, except the unsubscribe link; a pixel tracks opens.
    assert 'href="https://example.com/welcome"' not in html
    assert 'href="https://nurture.example.com/t/c/' in html
    url, mailto = (part.strip()[1:-1] for part in message["List-Unsubscribe"].split(","))
    token = url.rsplit("/", 1)[1]
    assert mailto == f"mailto:unsubscribe@example.com?subject=unsubscribe-{token}"
    assert url in html
    assert 'src="https://nurture.example.com/t/o/' in html
    text = message.get_body(("plain",)).get_content()
    assert "Bonjour Anne" in text


def test_a_redelivered_message_never_sends_twice(harness: Harness) -> None:
    ids = harness.engine.claim_due()
    harness.engine.advance(ids)
    harness.engine.advance(ids)  # the broker redelivers the same batch
    harness.engine.claim_due()
    assert harness.subjects("anne@example.com") == ["Bienvenue pour Atelier <Dubreuil>"]


def test_waits_of_days_live_in_the_database(harness: Harness) -> None:
    harness.tick()
    with harness.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert enrollment.status == "waiting"
    assert enrollment.next_run_at == START + timedelta(days=2)

    harness.at(START + timedelta(days=1, hours=23))
    assert harness.tick() == []
    harness.at(START + timedelta(days=2))
    harness.tick()
    assert harness.subjects("anne@example.com")[-1] == "Le guide pour Atelier <Dubreuil>"


def test_a_click_wakes_the_wait_for_at_once(harness: Harness) -> None:
    harness.tick()
    harness.at(START + timedelta(days=2))
    harness.tick()
    harness.at(START + timedelta(days=2, hours=3))
    with harness.sessions() as session:
        guide = session.scalars(select(Send).where(Send.step == "guide")).one()
    harness.event(
        {
            "id": "c1",
            "type": "email.clicked",
            "at": clock.now().isoformat(),
            "contact": {"email": "anne@example.com"},
            "properties": {"step": "guide"},
        }
    )
    with harness.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert enrollment.next_run_at == clock.now(), "the event made the enrollment due now"
    harness.tick()
    assert harness.subjects("anne@example.com")[-1] == "Merci pour Atelier <Dubreuil>"
    assert guide.step == "guide"


def test_no_click_times_out_and_completes(harness: Harness) -> None:
    harness.tick()
    harness.at(START + timedelta(days=2))
    harness.tick()
    harness.at(START + timedelta(days=7))
    harness.tick()
    with harness.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert (enrollment.status, enrollment.exit_reason) == ("completed", "no-click")
    assert enrollment.next_run_at is None
    assert len(harness.subjects("anne@example.com")) == 2


def test_an_unsubscribe_after_the_claim_stops_the_email(harness: Harness) -> None:
    harness.engine.advance(harness.engine.claim_due(), deliver=False)  # claimed, not yet sent
    harness.event(
        {
            "id": "u1",
            "type": "email.unsubscribed",
            "at": clock.now().isoformat(),
            "contact": {"email": "anne@example.com"},
        }
    )
    harness.engine.deliver()
    harness.at(START + timedelta(minutes=6))  # past the claim's lease: due again
    harness.engine.deliver()
    assert harness.transport.messages == []
    with harness.sessions() as session:
        send = session.scalars(select(Send)).one()
        enrollment = session.scalars(select(Enrollment)).one()
    assert (send.status, send.error) == ("skipped", "unsubscribed")
    harness.tick()
    with harness.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "unsubscribed")


def test_a_transient_failure_retries_later_and_a_permanent_one_does_not(harness: Harness) -> None:
    harness.transport.fail_next(1, transient=True)
    harness.tick()
    with harness.sessions() as session:
        send = session.scalars(select(Send)).one()
    assert send.status == "claimed" and send.attempts == 1
    assert send.next_attempt_at is not None and send.next_attempt_at > clock.now()
    assert harness.transport.messages == []

    harness.at(send.next_attempt_at)
    harness.engine.deliver()
    assert harness.subjects("anne@example.com") == ["Bienvenue pour Atelier <Dubreuil>"]

    harness.at(START + timedelta(days=2))
    harness.transport.fail_next(1, transient=False)
    harness.tick()
    with harness.sessions() as session:
        guide = session.scalars(select(Send).where(Send.step == "guide")).one()
    assert guide.status == "failed" and guide.next_attempt_at is None
    harness.at(START + timedelta(days=3))
    harness.engine.deliver()
    assert len(harness.subjects("anne@example.com")) == 1


def test_a_dead_workers_lease_expires_and_the_work_is_found_again(harness: Harness) -> None:
    first = harness.engine.claim_due()
    assert first  # claimed by a worker that then dies without advancing
    assert harness.engine.claim_due() == []
    harness.at(START + harness.engine.options.enrollment_lease + timedelta(seconds=1))
    assert harness.engine.claim_due() == first


def test_an_enrollment_keeps_the_version_it_started_on(
    harness: Harness, project_dir: Path, sessions: sessionmaker[Session]
) -> None:
    harness.tick()
    edited = (
        (project_dir / "workflows" / "lead-nurture.yaml")
        .read_text()
        .replace("wait: 2d", "wait: 10d")
    )
    (project_dir / "workflows" / "lead-nurture.yaml").write_text(edited)
    harness.engine = Engine(
        load_project(project_dir),
        sessions,
        harness.transport,
        Signer("k" * 32),
        record=harness.records.append,
    )
    harness.at(START + timedelta(days=2))
    harness.tick()
    assert harness.subjects("anne@example.com")[-1] == "Le guide pour Atelier <Dubreuil>"


def test_reaching_the_prospect_stage_mid_wait_ends_the_enrollment(harness: Harness) -> None:
    harness.tick()
    with harness.sessions.begin() as session:
        anne = session.scalars(select(Contact).where(Contact.email == "anne@example.com")).one()
        anne.stage = "sql"
        work.wake_contacts(session, [anne.id], clock.now())
    harness.tick()
    with harness.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "prospect")
    harness.at(START + timedelta(days=3))
    harness.tick()
    assert len(harness.subjects("anne@example.com")) == 1


def test_reenrollment_rules() -> None:
    now = START
    ended = work.PastEnrollment(
        1, "w", "completed", now - timedelta(days=100), now - timedelta(days=95)
    )
    active = work.PastEnrollment(1, "w", "waiting", now, None)
    from nurture.definitions import model as m

    assert may_enroll(m.Reenroll("never"), [], now)
    assert not may_enroll(m.Reenroll("never"), [ended], now)
    assert may_enroll(m.Reenroll("always"), [ended], now)
    assert not may_enroll(m.Reenroll("always"), [active], now)
    assert may_enroll(m.Reenroll("after", timedelta(days=90)), [ended], now)
    assert not may_enroll(m.Reenroll("after", timedelta(days=120)), [ended], now)


def test_the_example_project_simulates_deterministically(tmp_path: Path) -> None:
    from nurture.tools.reactions import load_reactions
    from nurture.tools.simulate import Simulation

    repo = Path(__file__).parents[2]
    copy = tmp_path / "example"
    shutil.copytree(repo / "templates", copy / "templates")
    shutil.copytree(repo / "workflows", copy / "workflows")
    shutil.copy(repo / "nurture.yaml", copy)

    def once() -> list[dict[str, object]]:
        simulation = Simulation(
            load_project(copy),
            start=START,
            days=20,
            seed=7,
            reactions=load_reactions(repo / "examples" / "reactions.yaml"),
        )
        result = simulation.run(
            repo / "examples" / "contacts.csv", repo / "examples" / "events.jsonl"
        )
        return [r.as_json() for r in result.records]

    first = once()
    assert first == once()
    assert [line["at"] for line in first] == sorted(line["at"] for line in first)  # type: ignore[type-var]
    kinds = {line["kind"] for line in first}
    assert {"enroll", "send", "event"} <= kinds
    sends = [line for line in first if line["kind"] == "send"]
    assert all(line["workflow"] and line["step"] and line["subject"] for line in sends)


def test_day_scale_waits_on_the_system_clock_with_freezegun(
    project_dir: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """No virtual clock here: the engine reads the real clock, frozen and moved by freezegun."""
    from freezegun import freeze_time

    with freeze_time(START) as frozen:
        h = Harness(load_project(project_dir), sessions)
        with clock.using(clock.Clock()):
            h.import_csv("email,first_name,company,stage\nanne@example.com,Anne,X,lead\n")
            h.tick()
            frozen.tick(timedelta(days=1))
            h.tick()
            assert len(h.subjects("anne@example.com")) == 1
            frozen.tick(timedelta(days=1))
            h.tick()
            assert h.subjects("anne@example.com") == ["Bienvenue pour X", "Le guide pour X"]


def test_a_slow_relay_keeps_its_leases_so_no_other_worker_sends_the_rest(
    project_dir: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    from nurture.store import sends as queries
    from nurture.transports.mime import BuiltMessage

    virtual = clock.VirtualClock(START)
    stolen: list[list[int]] = []

    class SlowRelay(CaptureTransport):
        """Each message takes 40 s; halfway through, a second worker tries to take over."""

        def _deliver(self, message: BuiltMessage, email: object) -> None:
            virtual.advance_to(virtual.now() + timedelta(seconds=40))
            if len(self.messages) == 3:
                with sessions.begin() as session:
                    stolen.append(
                        queries.lease_sends(session, virtual.now(), timedelta(seconds=60))
                    )
            super()._deliver(message, email)  # type: ignore[arg-type]

    relay = SlowRelay()
    with clock.using(virtual):
        engine = Engine(
            load_project(project_dir),
            sessions,
            relay,
            Signer("k" * 32),
            EngineOptions(send_lease=timedelta(seconds=60)),
        )
        (tmp_path / "c.csv").write_text(
            "email,stage\n" + "".join(f"p{i}@example.com,lead\n" for i in range(6))
        )
        import_contacts(
            sessions,
            tmp_path / "c.csv",
            stages=("subscriber", "lead", "mql", "sql"),
            on_batch=engine.on_import,
        )
        engine.advance(engine.claim_due(), deliver=False)
        engine.deliver()
    assert stolen == [[]], "another worker could lease sends this worker was still delivering"
    assert len(relay.messages) == 6
    with sessions() as session:
        assert set(session.scalars(select(Send.status))) == {"sent"}


def test_a_retry_waiting_for_a_worker_is_queued_once_not_on_every_tick(
    harness: Harness,
) -> None:
    """The field report: 114 messages queued for 20 retries while workers were busy."""
    from nurture.engine.scheduler import Scheduler

    harness.transport.fail_next(10)  # the relay says 451 to every first attempt
    harness.tick()
    with harness.sessions() as session:
        retries = [s.id for s in session.scalars(select(Send)) if s.status == "claimed"]
    assert retries
    harness.at(clock.now() + timedelta(hours=1))  # every retry is due
    queued: list[list[int]] = []
    scheduler = Scheduler(harness.engine, lambda ids: None, lambda ids: queued.append(list(ids)))
    for _ in range(5):
        scheduler.tick()  # no worker took them yet
    assert queued == [retries]
