"""A one-workflow project (a lead nurture: welcome, wait, guide, wait for a click)
and a harness that drives the real engine on it under a virtual clock: what a
scheduler tick plus a worker do, imports and events.

Shared by the engine, deployment, send-path, scoring and handoff tests;
`project_dir` is a fixture, imported by the modules that use it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import Project
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle.importer import import_contacts
from nurture.lifecycle.ingest import parse_event
from nurture.records import Record
from nurture.store.models import Contact
from nurture.tokens import Signer
from nurture.transports import CaptureTransport

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Paris

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
properties: {industry: string}
sending:
  from: "Équipe Exemple <bonjour@example.com>"
  reply_to: ventes@example.com
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - wait: 2d
  - id: guide
    send: lead/guide
  - wait_for: {event: email.clicked, match: "event.step == 'guide'", timeout: 5d}
    on_event: thanks
  - exit: no-click
  - id: thanks
    send: lead/thanks
"""
TEMPLATE = """\
---
subject: "{subject} pour {{{{ contact.company }}}}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{{{ contact.first_name }}}} ({{{{ contact.company }}}}), <a href="https://example.com/{name}">lire</a></mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "workflows").mkdir(parents=True)
    (root / "templates" / "lead").mkdir(parents=True)
    (root / "nurture.yaml").write_text(CONFIG)
    (root / "workflows" / "lead-nurture.yaml").write_text(LEAD)
    for name, subject in (("welcome", "Bienvenue"), ("guide", "Le guide"), ("thanks", "Merci")):
        (root / "templates" / "lead" / f"{name}.mjml").write_text(
            TEMPLATE.format(subject=subject, name=name)
        )
    return root


class Harness:
    """The real engine with a capture transport and a virtual clock; a test world's base.

    The scoring, handoff and web sales worlds extend it with their own
    helpers; `options` are the engine's (a webhook secret, say), `secret` the
    key its links are signed with.
    """

    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        options: EngineOptions | None = None,
        start: datetime = START,
        secret: str = "k" * 32,
    ) -> None:
        self.clock = clock.VirtualClock(start)
        self.transport = CaptureTransport()
        self.records: list[Record] = []
        self.engine = Engine(
            project,
            sessions,
            self.transport,
            Signer(secret),
            options or EngineOptions(base_url="https://nurture.example.com"),
            record=self.records.append,
        )
        self.ingestor = self.engine.lifecycle.ingestor
        self.sessions = sessions
        self._files = self._events = 0

    def at(self, moment: datetime) -> None:
        self.clock.advance_to(moment)

    def tick(self, deliver: bool = True) -> list[int]:
        """What a scheduler tick plus a worker do: claim due work, advance it."""
        ids = self.engine.claim_due()
        if ids:
            self.engine.advance(ids, deliver=deliver)
        self.engine.deliver()
        return ids

    def run(self) -> None:
        """Ticks until nothing is due now."""
        while ids := self.engine.claim_due():
            self.engine.advance(ids)
        self.engine.deliver()

    def later(self, delta: timedelta) -> None:
        self.clock.advance_to(self.clock.now() + delta)
        self.run()

    def import_csv(self, tmp: Path, text: str) -> None:
        self._files += 1
        path = tmp / f"contacts-{self._files}.csv"
        path.write_text(text)
        config = self.engine.project.config
        import_contacts(
            self.sessions,
            path,
            stages=config.stages,
            properties=config.properties,
            on_batch=self.engine.on_import,
        )

    def event(self, data: dict[str, object]) -> str:
        """Record one event as the API would; its outcome (recorded, duplicate…)."""
        with self.sessions.begin() as session:
            event = parse_event(data, now=self.clock.now())
            return self.ingestor.ingest_one(session, event, "test").status

    def signal(
        self,
        kind: str,
        email: str = "anne@example.com",
        event_id: str | None = None,
        **properties: object,
    ) -> str:
        """An event of `kind` for `email`, now, with a fresh id unless one is given."""
        self._events += 1
        return self.event(
            {
                "id": event_id or f"e{self._events}",
                "type": kind,
                "at": clock.now().isoformat(),
                "contact": {"email": email},
                "properties": properties,
            }
        )

    def contact(self, email: str = "anne@example.com") -> Contact:
        with self.sessions() as session:
            return session.scalars(select(Contact).where(Contact.email == email)).one()

    def subjects(self, to: str = "anne@example.com") -> list[str]:
        return [m.email.subject for m in self.transport.messages if m.email.to == to]
