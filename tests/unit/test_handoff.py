"""The sales handoff: owner, snapshot, notifications once, SLA, accept / reject / reopen, digest."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle import accounts
from nurture.lifecycle.handoff.actions import HandoffConflict, next_turn
from nurture.store.models import (
    Contact,
    Enrollment,
    Event,
    Handoff,
    Notification,
    ScoreEntry,
    StageHistory,
)
from nurture.testing import Harness, write_project
from nurture.tokens import Signer
from nurture.transports.capture import CapturedEmail

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday
SECRET = "webhook-secret-for-tests"

CONFIG = """\
stages: [subscriber, lead, mql, sql, opportunity]
prospect_stage: sql
properties:  # what the example's sales templates read
  industry: string
  company_size: number
  budget_confirmed: boolean
  country: string
  job_title: string
  last_content: string
scoring:
  rules:
    - {event: content.downloaded, points: 25}
    - {event: demo.requested, points: 40}
  thresholds: {lead: 20, mql: 70, sql: 100}
handoff:
  at: sql
  assign:
    round_robin: [alice@example.com, bob@example.com]
  notify:
    - webhook: https://crm.example.com/hooks/nurture
    - email: owner
  sla: {accept_within: 24h, escalate_after: 12h, escalate_to: boss@example.com}
  on_accept: {stage: opportunity}
  on_reject: {stage: lead, score: halve, workflow: recycle}
webhooks:
  - url: https://crm.example.com/hooks/stages
    events: [stage.changed]
sending:
  from: "Équipe <bonjour@example.com>"
"""
RECYCLE = """\
name: recycle
enroll: {event: handoff.rejected}
steps:
  - send: lead/one
"""
NOTIFYING = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - notify: {email: owner, template: sales/handoff}
  - wait: 30d
"""
BODY = "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>\n"


class Sales(Harness):
    """The shared harness with a CRM that records webhooks and answers as told."""

    def __init__(self, root: Path, sessions: sessionmaker[Session]) -> None:
        super().__init__(load_project(root), sessions, EngineOptions(webhook_secret=SECRET), START)
        self.hooks: list[httpx.Request] = []
        self.answers: dict[str, list[int]] = {}  # URL path → status codes to answer, in turn

        def crm(request: httpx.Request) -> httpx.Response:
            self.hooks.append(request)
            queued = self.answers.get(request.url.path, [])
            return httpx.Response(queued.pop(0) if queued else 204)

        self.engine.notifier = self.engine.make_notifier(
            httpx.Client(transport=httpx.MockTransport(crm))
        )

    def qualify(self, email: str) -> None:
        self.signal("content.downloaded", email, title="Livre blanc : la grille de scoring")
        self.signal("demo.requested", email)
        self.signal("content.downloaded", email, title="Étude de cas")  # 90
        self.signal("demo.requested", email)  # 130: sql

    def handoff(self, email: str) -> Handoff:
        with self.sessions() as session:
            return session.scalars(
                select(Handoff)
                .join(Contact, Contact.id == Handoff.contact_id)
                .where(Contact.email == email)
            ).one()

    def chores(self) -> None:
        self.engine.housekeeping(clock.now())
        self.engine.notifier.deliver()


@pytest.fixture
def sales(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Sales]:
    root = write_project(
        tmp_path / "p",
        CONFIG,
        {"recycle": RECYCLE},
        {"lead/one": '---\nsubject: "one"\n---\n' + BODY},
        example_templates=("_layouts", "sales"),
    )
    world = Sales(root, sessions)
    with clock.using(world.clock):
        world.import_csv(
            "email,first_name,company,stage\n"
            "anne@example.com,Anne,Atelier,lead\n"
            "bob@example.com,Bob,Batipro,lead\n",
        )
        yield world


def test_reaching_sql_opens_one_handoff_with_owner_snapshot_and_notifications(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    sales.qualify("bob@example.com")
    anne, bob = sales.handoff("anne@example.com"), sales.handoff("bob@example.com")
    assert (anne.owner, bob.owner) == ("alice@example.com", "bob@example.com")  # round robin
    assert sales.contact("anne@example.com").owner == "alice@example.com"
    assert anne.status == "open" and anne.sla_due_at == START + timedelta(hours=24)
    snapshot = anne.snapshot
    assert snapshot["score"]["total"] == 130
    assert snapshot["last_content"]["title"] == "Étude de cas"  # a demo request is not content
    assert [h["to"] for h in snapshot["stage_history"]][-1] == "sql"
    assert {item["type"] for item in snapshot["timeline"]} >= {
        "content.downloaded",
        "demo.requested",
    }

    sales.chores()
    sales.chores()  # a second pass must not notify again
    assert sales.subjects("alice@example.com") == [
        "Lead qualifié à prendre en charge : Anne (Atelier)"
    ]
    handoff_hooks = [r for r in sales.hooks if r.url.path == "/hooks/nurture"]
    assert len(handoff_hooks) == 2  # one per handoff
    request = handoff_hooks[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Nurture-Signature"] == expected
    assert request.headers["X-Nurture-Event"] == "handoff.created"
    body = json.loads(request.content)
    assert body["handoff"]["owner"] in ("alice@example.com", "bob@example.com")
    assert body["snapshot"]["contact"]["email"] in ("anne@example.com", "bob@example.com")
    # the CRM is also told about every stage change
    stage_hooks = [json.loads(r.content) for r in sales.hooks if r.url.path == "/hooks/stages"]
    assert {(h["contact"]["email"], h["to"]) for h in stage_hooks} >= {("anne@example.com", "sql")}


def test_a_round_robin_position_survives_a_restart(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        turns = [next_turn(session, "r", 3) for _ in range(4)]
    with sessions.begin() as session:  # a new process, the same database
        turns.append(next_turn(session, "r", 3))
    assert turns == [0, 1, 2, 0, 1]


def test_a_failing_webhook_retries_with_backoff_and_logs_every_attempt(sales: Sales) -> None:
    sales.answers = {"/hooks/nurture": [503]}
    sales.qualify("anne@example.com")
    sales.chores()
    with sales.sessions() as session:
        hook = session.scalars(
            select(Notification).where(
                Notification.kind == "webhook", Notification.topic == "handoff.created"
            )
        ).one()
    assert hook.status == "pending" and hook.attempts == 1
    assert hook.next_attempt_at is not None and hook.next_attempt_at > clock.now()
    sales.clock.advance_to(hook.next_attempt_at)
    sales.chores()
    with sales.sessions() as session:
        hook = session.get(Notification, hook.id)
        assert hook is not None
    assert hook.status == "sent" and [entry["outcome"] for entry in hook.log] == ["503", "204"]


def test_a_webhook_refused_for_good_is_not_retried(sales: Sales) -> None:
    sales.answers = {"/hooks/nurture": [404]}
    sales.qualify("anne@example.com")
    sales.chores()
    with sales.sessions() as session:
        hook = session.scalars(
            select(Notification).where(
                Notification.topic == "handoff.created", Notification.kind == "webhook"
            )
        ).one()
    assert (hook.status, hook.next_attempt_at, hook.last_error) == ("failed", None, "HTTP 404")


def test_the_sla_reminds_then_escalates_once_each(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    sales.chores()
    sales.clock.advance_to(START + timedelta(hours=23))
    sales.chores()
    assert len(sales.subjects("alice@example.com")) == 1
    sales.clock.advance_to(START + timedelta(hours=24))
    sales.chores()
    sales.chores()
    assert sales.subjects("alice@example.com")[-1].startswith("Rappel : lead en attente")
    assert len(sales.subjects("alice@example.com")) == 2
    assert sales.subjects("boss@example.com") == []
    sales.clock.advance_to(START + timedelta(hours=36))
    sales.chores()
    sales.chores()
    assert len(sales.subjects("boss@example.com")) == 1
    actions = [a["action"] for a in sales.handoff("anne@example.com").actions]
    assert actions == ["opened", "reminded", "escalated"]


def test_reject_recycles_the_contact_as_on_reject_says(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    handoff = sales.handoff("anne@example.com")
    score = sales.contact("anne@example.com").score
    with sales.sessions.begin() as session, pytest.raises(HandoffConflict, match="reason"):
        sales.engine.handoffs.reject(session, handoff.id, "alice", "  ", clock.now())
    with sales.sessions.begin() as session:
        sales.engine.handoffs.reject(
            session, handoff.id, "alice", "pas de budget avant T3", clock.now()
        )
    anne = sales.contact("anne@example.com")
    assert anne.stage == "lead" and anne.score == pytest.approx(score / 2)
    with sales.sessions() as session:
        last_move = session.scalars(
            select(StageHistory)
            .where(StageHistory.contact_id == anne.id)
            .order_by(StageHistory.id.desc())
        ).first()
        enrollments = session.scalars(
            select(Enrollment.workflow).where(Enrollment.contact_id == anne.id)
        ).all()
        rejected_event = session.scalars(
            select(Event).where(Event.contact_id == anne.id, Event.type == "handoff.rejected")
        ).one()
        halving = session.scalars(
            select(ScoreEntry).where(ScoreEntry.rule == "handoff.rejected:halve")
        ).one()
    assert last_move is not None
    assert (last_move.cause, last_move.details["reason"], last_move.details["by"]) == (
        "handoff.rejected",
        "pas de budget avant T3",
        "alice",
    )
    assert enrollments.count("recycle") == 1
    assert rejected_event.properties["reason"] == "pas de budget avant T3"
    assert halving.points == pytest.approx(-score / 2)
    handoff = sales.handoff("anne@example.com")
    assert (handoff.status, handoff.reason, handoff.decided_by) == (
        "rejected",
        "pas de budget avant T3",
        "alice",
    )

    with sales.sessions.begin() as session:
        sales.engine.handoffs.reopen(session, handoff.id, "bob", clock.now())
    assert sales.handoff("anne@example.com").status == "open"  # the same one, not a second
    anne = sales.contact("anne@example.com")
    assert anne.stage == "sql"
    with sales.sessions() as session:
        running = session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == anne.id, Enrollment.status.in_(("active", "waiting"))
            )
        ).all()
    assert running == []  # a prospect again: no nurture


def test_accept_moves_to_the_accepted_stage_and_only_once(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    handoff = sales.handoff("anne@example.com")
    with sales.sessions.begin() as session:
        sales.engine.handoffs.accept(session, handoff.id, "alice", clock.now())
    assert sales.contact("anne@example.com").stage == "opportunity"
    with sales.sessions.begin() as session, pytest.raises(HandoffConflict, match="accepted"):
        sales.engine.handoffs.accept(session, handoff.id, "alice", clock.now())


def test_the_weekly_digest_lists_each_owners_leads_once_a_week(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    sales.qualify("bob@example.com")
    with sales.sessions() as session:
        report = sales.engine.handoffs.digest(
            session, START - timedelta(days=7), START + timedelta(days=1)
        )
    assert set(report) == {"alice@example.com", "bob@example.com"}
    [lead] = report["alice@example.com"]
    assert (lead["email"], lead["last_content"], lead["status"]) == (
        "anne@example.com",
        "Étude de cas",
        "open",
    )
    sales.clock.advance_to(START + timedelta(days=7))  # next Monday 09:00 UTC = 10:00 Paris
    sales.chores()
    sales.chores()
    digests = [s for s in sales.subjects("alice@example.com") if "de la semaine" in s]
    assert digests == ["Vos leads qualifiés de la semaine (1)"]


def test_a_workflow_notify_step_emails_the_owner_once(sales: Sales, tmp_path: Path) -> None:
    root = sales.engine.project.root
    (root / "workflows" / "lead-nurture.yaml").write_text(NOTIFYING)
    sales.engine = Engine(
        load_project(root),
        sales.sessions,
        sales.transport,
        Signer("k" * 32),
        EngineOptions(webhook_secret=SECRET),
    )
    sales.engine.notifier = sales.engine.make_notifier(
        httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    )
    sales.import_csv("email,stage,owner\ncarla@example.com,lead,claire@example.com\n")
    ids = sales.engine.claim_due()
    sales.engine.advance(ids)
    sales.engine.advance(ids)  # redelivered
    sales.chores()
    assert len(sales.subjects("claire@example.com")) == 1


def _html(message: CapturedEmail) -> str:
    body = message.parsed().get_body(("html",))
    assert body is not None
    return html.unescape(str(body.get_content()))


def test_an_owner_without_an_account_is_offered_a_sign_up_link(sales: Sales) -> None:
    """Issue #16: owners that are not accounts get the notification with a way in."""
    with sales.sessions.begin() as session:
        accounts.add(session, "alice@example.com", "Alice", "sales", "Europe/Paris", clock.now())
    sales.qualify("anne@example.com")  # → alice, who has an account
    sales.qualify("bob@example.com")  # → bob, who has none
    sales.chores()
    [to_alice] = sales.transport.for_recipient("alice@example.com")
    [to_bob] = sales.transport.for_recipient("bob@example.com")
    assert "/sales/password" not in _html(to_alice)
    found = re.search(r'href="[^"]*/sales/password\?token=([A-Za-z0-9_-]+)"', _html(to_bob))
    assert found is not None and "Créez-le ici" in _html(to_bob)
    now = clock.now()
    with sales.sessions.begin() as session:
        link = accounts.valid_link(session, found.group(1), now)
        assert link is not None and (link.purpose, link.email) == ("signup", "bob@example.com")
        done = accounts.use_link(session, link, "bob's long secret", now, name="Bob Durand")
        assert done.created and (done.account.role, done.account.name) == ("sales", "Bob Durand")
    with sales.sessions() as session:  # used once: no second account from it
        assert accounts.valid_link(session, found.group(1), now) is None


def test_a_reassigned_handoff_emails_its_new_owner(sales: Sales) -> None:
    sales.qualify("anne@example.com")
    sales.chores()
    anne = sales.handoff("anne@example.com")
    with sales.sessions.begin() as session:
        sales.engine.handoffs.reassign(
            session, anne.id, "carol@example.com", "boss@example.com", clock.now()
        )
    sales.chores()
    sales.chores()
    assert sales.subjects("carol@example.com") == [
        "Lead qualifié à prendre en charge : Anne (Atelier)"
    ]
    assert sales.contact("anne@example.com").owner == "carol@example.com"
    moved = sales.handoff("anne@example.com")
    assert moved.owner == "carol@example.com"
    assert {k: moved.actions[-1][k] for k in ("action", "by", "previous", "to")} == {
        "action": "reassigned",
        "by": "boss@example.com",
        "previous": "alice@example.com",
        "to": "carol@example.com",
    }
    with sales.sessions.begin() as session, pytest.raises(HandoffConflict, match="already"):
        sales.engine.handoffs.reassign(
            session, anne.id, "Carol@example.com", "boss@example.com", clock.now()
        )
    with sales.sessions.begin() as session:
        sales.engine.handoffs.accept(session, anne.id, "carol@example.com", clock.now())
    with sales.sessions.begin() as session, pytest.raises(HandoffConflict, match="not open"):
        sales.engine.handoffs.reassign(
            session, anne.id, "dan@example.com", "boss@example.com", clock.now()
        )


def test_each_email_to_sales_and_webhook_is_logged_without_an_address(
    sales: Sales, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nurture.notifications")
    sales.answers = {"/hooks/nurture": [503]}
    sales.qualify("anne@example.com")
    sales.chores()
    lines = [r.getMessage() for r in caplog.records if r.name == "nurture.notifications"]
    assert any(
        line.startswith("email to sales sent: notification ")
        and "handoff.created, template sales/handoff" in line
        for line in lines
    ), lines
    assert any(line.startswith("webhook not sent, will retry:") for line in lines), lines
    for line in lines:
        for personal in ("anne@example.com", "alice@example.com", "Anne", "crm.example.com"):
            assert personal not in line, line
