"""A project with a sales handoff, driven through the real engine, behind the web app.

Anne (a lead) is pushed over the `sql` threshold by ingested events, which
opens a handoff assigned to alice@example.com with a 24 h SLA; a rejection
sends her back to `lead` with half her score and into the `recycle`
workflow (enrolled on the `handoff.rejected` event).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.definitions.loader import load_project
from nurture.engine.service import EngineOptions
from nurture.lifecycle import accounts
from nurture.settings import Settings
from nurture.store.models import Contact, Enrollment, Handoff, StageHistory
from nurture.testing import Harness, write_project
from nurture.web.app import create_app

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Paris
API_KEY = "sales-test-key-0123456789"
SIGNING_KEY = "s" * 32
#: Every test account's password.
PASSWORD = "correct horse battery"

CONFIG = """\
stages: [subscriber, lead, mql, sql, customer]
prospect_stage: sql
scoring:
  rules:
    - {event: content.downloaded, points: 30}
    - {event: page.visited, when: "'/pricing' in (event.url or '')", points: 20}
    - {event: demo.requested, points: 40}
  thresholds: {lead: 20, mql: 60, sql: 100}
handoff:
  at: sql
  assign: {round_robin: [alice@example.com]}
  sla: {accept_within: 24h}
  on_reject: {stage: lead, score: halve, workflow: recycle}
sending:
  default_timezone: Europe/Paris
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
"""
RECYCLE = """\
name: recycle
enroll: {event: handoff.rejected}
steps:
  - send: recycle/check-in
"""
TEMPLATE = (
    '---\nsubject: "{subject}"\n---\n<mjml><mj-body><mj-section><mj-column>'
    "<mj-text>Bonjour {{{{ contact.first_name }}}}</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>\n"
)
CONTACTS = (
    "email,first_name,last_name,company,stage\n"
    "anne@example.com,Anne,Martin,Atelier Martin,lead\n"
    "bob@example.com,Bob,Durand,Batipro,lead\n"
)


class SalesWorld(Harness):
    """The engine, its app and helpers to push contacts and read the database."""

    def __init__(
        self,
        root: Path,
        sessions: sessionmaker[Session],
        tmp: Path,
        start: datetime,
        base_url: str = "https://nurture.example.com",
    ) -> None:
        super().__init__(
            load_project(root), sessions, EngineOptions(base_url=base_url), start, SIGNING_KEY
        )
        self.settings = Settings(
            _env_file=None, api_keys=API_KEY, secret_key=SIGNING_KEY, base_url=base_url
        )
        self.app = create_app(self.engine, self.settings)
        self._tmp = tmp

    def import_rows(self, text: str) -> None:
        self.import_csv(text)

    def add_account(
        self, email: str, name: str, role: str = "sales", password: str = PASSWORD
    ) -> None:
        """An account with its password set, through its one-time link as a person would."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            account = accounts.add(session, email, name, role, "Europe/Paris", now)
            link = accounts.valid_link(session, accounts.issue_link(session, account, now), now)
            assert link is not None
            accounts.use_link(session, link, password, now)

    def move_clock(self, **delta: float) -> None:
        """Time passes; nothing runs (`later` would also run the engine)."""
        self.clock.advance_to(self.clock.now() + timedelta(**delta))

    def push_to_sales(self, email: str = "anne@example.com") -> Handoff:
        """Engagement events until the contact crosses the sql threshold (120 points)."""
        self.signal(
            "content.downloaded", email, title="Livre blanc BTP", url="https://example.com/livre"
        )
        self.move_clock(hours=1)
        self.signal("page.visited", email, url="https://example.com/pricing")
        self.move_clock(hours=1)
        self.signal("demo.requested", email)
        self.move_clock(minutes=30)
        self.signal(
            "content.downloaded", email, title="Étude de cas Batipro", url="https://example.com/cas"
        )
        handoff = self.handoff(email)
        assert handoff is not None and handoff.status == "open"
        return handoff

    def handoff(self, email: str = "anne@example.com") -> Handoff | None:
        with self.sessions() as session:
            return session.scalars(
                select(Handoff)
                .join(Contact, Contact.id == Handoff.contact_id)
                .where(Contact.email == email)
                .order_by(Handoff.id.desc())
            ).first()

    def history(self, email: str = "anne@example.com") -> list[StageHistory]:
        contact = self.contact(email)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(StageHistory)
                    .where(StageHistory.contact_id == contact.id)
                    .order_by(StageHistory.at, StageHistory.id)
                )
            )

    def enrollments(self, email: str = "anne@example.com") -> dict[str, str]:
        contact = self.contact(email)
        with self.sessions() as session:
            return {
                e.workflow: e.status
                for e in session.scalars(
                    select(Enrollment).where(Enrollment.contact_id == contact.id)
                )
            }


def build(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    start: datetime = START,
    base_url: str = "https://nurture.example.com",
) -> SalesWorld:
    """The world, no contact yet: run `populate` under `clock.using(world.clock)`."""
    root = write_project(
        tmp_path / "project",
        CONFIG,
        {"lead-nurture": LEAD, "recycle": RECYCLE},
        {
            "lead/welcome": TEMPLATE.format(subject="Bienvenue"),
            "recycle/check-in": TEMPLATE.format(subject="Des nouvelles"),
        }
        | {  # what the SLA needs to exist
            f"sales/{name}": TEMPLATE.format(subject=f"{name} #{{{{ handoff.id }}}}")
            for name in ("handoff", "reminder", "escalation")
        },
    )
    return SalesWorld(root, sessions, tmp_path, start, base_url)


def populate(world: SalesWorld) -> None:
    """Anne and Bob imported as leads, their welcome email sent; accounts for Alice (the
    round robin's one owner, sales), Marc (sales, owns nothing) and Léa (lead)."""
    world.import_rows(CONTACTS)
    world.run()
    world.add_account("alice@example.com", "Alice Martin")
    world.add_account("marc@example.com", "Marc Leroy")
    world.add_account("lea@example.com", "Léa Lambert", role="lead")
