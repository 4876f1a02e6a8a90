"""The real engine under a test's control: `Harness`, and `write_project` to give it a project.

`simulate_project` answers "what does this program do over a month?". Some
tests need to stand inside the month instead: run one scheduler tick, look at
the database, send an event the way the API would, move the clock an hour.
`Harness` is the engine a worker runs (enrollment, executor, scoring,
stages, handoffs, delivery), with three things swapped for in-memory twins: a
`CaptureTransport` that keeps every email it is handed, a `VirtualClock`, and
a list that collects the engine's records (`simulate`'s timeline). The
database is yours: a migrated SQLite file, or PostgreSQL::

    from nurture.store.db import create_engine_for, session_factory, upgrade
    from nurture.testing import Harness, write_project

    def test_a_lead_gets_the_welcome_email(tmp_path):
        root = write_project(tmp_path / "p", CONFIG, {"lead-nurture": LEAD}, {"lead/welcome": MJML})
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        upgrade(url)
        world = Harness(load_project(root), session_factory(create_engine_for(url)))
        with clock.using(world.clock):
            world.import_csv("email,stage\\nanne@example.com,lead\\n")
            world.run()
        assert world.subjects() == ["Bienvenue"]
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import CONFIG_FILE, TEMPLATES_DIR, WORKFLOWS_DIR, Project
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle.importer import ImportReport, import_contacts
from nurture.lifecycle.incoming import parse_event
from nurture.records import Record
from nurture.store.contacts import contact_by_email
from nurture.store.models import Contact
from nurture.tokens import Signer
from nurture.tools.demo import find_example_project
from nurture.transports.capture import CaptureTransport

#: A Monday, 08:00 UTC (09:00 in Paris): send windows never surprise a test.
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def write_project(
    root: Path,
    config: str,
    workflows: Mapping[str, str] = {},
    templates: Mapping[str, str] = {},
    *,
    example_templates: Iterable[str] = (),
) -> Path:
    """A project folder: `config` as nurture.yaml, each workflow as workflows/<name>.yaml,
    each template as templates/<name>.mjml (a name may hold a folder: ``lead/welcome``).
    `example_templates` are template folders copied from the example project (``"sales"``
    for the handoff emails, ``"_layouts"``). Returns `root`."""
    (root / WORKFLOWS_DIR).mkdir(parents=True, exist_ok=True)
    (root / TEMPLATES_DIR).mkdir(exist_ok=True)
    (root / CONFIG_FILE).write_text(config, encoding="utf-8")
    for name, text in workflows.items():
        (root / WORKFLOWS_DIR / f"{name}.yaml").write_text(text, encoding="utf-8")
    example = find_example_project() / TEMPLATES_DIR
    for folder in example_templates:
        shutil.copytree(example / folder, root / TEMPLATES_DIR / folder, dirs_exist_ok=True)
    for name, text in templates.items():
        path = root / TEMPLATES_DIR / f"{name}.mjml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


class Harness:
    """The real engine with a capture transport and a virtual clock, driven by a test.

    `options` are the engine's (a webhook secret to notify sales, say);
    `secret` is the key its links are signed with. Times are the harness's
    `clock`: run what you do under ``clock.using(harness.clock)``.
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
        #: Everything the engine did, in order (simulate's timeline).
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
        self._files = tempfile.TemporaryDirectory(prefix="nurture-harness-")
        self._imports = self._events = 0

    # -- time and work ---------------------------------------------------------------------

    def at(self, moment: datetime) -> None:
        """The clock moves to `moment` (never back); nothing runs."""
        self.clock.advance_to(moment)

    def tick(self, deliver: bool = True) -> list[int]:
        """What a scheduler tick plus a worker do: re-check segment standings due, claim
        due enrollments, advance them, deliver what is due. The enrollments advanced."""
        self.engine.recheck_segments()
        ids = self.engine.claim_due()
        if ids:
            self.engine.advance(ids, deliver=deliver)
        self.engine.deliver()
        return ids

    def run(self) -> None:
        """Ticks until nothing is due now."""
        while self.engine.recheck_segments():
            pass
        while ids := self.engine.claim_due():
            self.engine.advance(ids)
        self.engine.deliver()

    def later(self, delta: timedelta) -> None:
        """Time passes by `delta`, then everything due runs."""
        self.clock.advance_to(self.clock.now() + delta)
        self.run()

    # -- contacts and events in ----------------------------------------------------------

    def import_csv(self, text: str, name: str | None = None) -> ImportReport:
        """Import contacts from CSV (or JSON Lines) text as `nurture contacts import` does."""
        self._imports += 1
        path = Path(self._files.name) / (name or f"contacts-{self._imports}.csv")
        path.write_text(text, encoding="utf-8")
        config = self.engine.project.config
        return import_contacts(
            self.sessions,
            path,
            stages=config.stages,
            properties=config.properties,
            on_batch=self.engine.on_import,
        )

    def event(self, data: Mapping[str, object]) -> str:
        """Record one event as the API would: its outcome (recorded, duplicate), or
        `InvalidEvent` raised with the reason it was refused."""
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

    # -- what happened ---------------------------------------------------------------------

    def contact(self, email: str = "anne@example.com") -> Contact:
        """The contact as stored now (raises if there is none)."""
        with self.sessions() as session:
            found = contact_by_email(session, email)
        if found is None:
            raise LookupError(f"no contact {email}")
        return found

    def subjects(self, to: str = "anne@example.com") -> list[str]:
        """The subject lines of the emails sent to `to`, in order."""
        return [m.email.subject for m in self.transport.messages if m.email.to == to]
