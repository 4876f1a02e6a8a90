"""A one-workflow project (a lead nurture: welcome, wait, guide, wait for a click)
and a harness that drives the real engine on it under a virtual clock: what a
scheduler tick plus a worker do, imports and events.

Shared by the engine, deployment and send-path tests; `project_dir` is a
fixture, imported by the modules that use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nurture import clock
from nurture.definitions.loader import Project
from nurture.engine.records import Record
from nurture.engine.service import Engine, EngineOptions
from nurture.importer import import_contacts
from nurture.ingest import Ingestor, parse_event
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
    def __init__(self, project: Project, sessions: sessionmaker[Session]) -> None:
        self.clock = clock.VirtualClock(START)
        self.transport = CaptureTransport()
        self.records: list[Record] = []
        self.engine = Engine(
            project,
            sessions,
            self.transport,
            Signer("k" * 32),
            EngineOptions(base_url="https://nurture.example.com"),
            record=self.records.append,
        )
        self.sessions = sessions

    def at(self, moment: datetime) -> None:
        self.clock.advance_to(moment)

    def tick(self, deliver: bool = True) -> list[int]:
        """What a scheduler tick plus a worker do: claim due work, advance it."""
        ids = self.engine.claim_due()
        if ids:
            self.engine.advance(ids, deliver=deliver)
        self.engine.deliver()
        return ids

    def import_csv(self, tmp: Path, text: str) -> None:
        path = tmp / "contacts.csv"
        path.write_text(text)
        config = self.engine.project.config
        import_contacts(
            self.sessions,
            path,
            stages=config.stages,
            properties=config.properties,
            on_batch=self.engine.on_import,
        )

    def subjects(self, to: str) -> list[str]:
        return [m.email.subject for m in self.transport.messages if m.email.to == to]

    def event(self, data: dict[str, object]) -> None:
        with self.sessions.begin() as session:
            Ingestor(self.engine).ingest(session, parse_event(data, now=self.clock.now()), "test")
