"""A web app over the real engine: SQLite, capture transport, a virtual clock.

Contacts are imported and emails sent through the engine, so the links the
tests follow are the real signed links out of the captured HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.testing as testing
from nurture.definitions.loader import load_project
from nurture.engine.service import EngineOptions
from nurture.settings import Settings
from nurture.store.models import Event, Send
from nurture.testing import Harness
from nurture.tokens import Signer
from nurture.transports.capture import CapturedEmail
from nurture.web.app import create_app

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Paris
BASE_URL = "https://nurture.example.com"
API_KEY = "test-api-key-0123456789"
SIGNING_KEY = "k" * 32
WEBHOOK_SECRET = "generic-webhook-secret"
MAILGUN_KEY = "mailgun-signing-key"

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
properties: {industry: string, employees: number}
scoring:
  rules:
    - {event: email.clicked, points: 10}
  fit:
    - {when: "contact.industry == 'btp'", points: 20}
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - wait: 2d
  - id: guide
    send: lead/guide
"""
TEMPLATE = """\
---
subject: "{subject} pour {{{{ contact.company }}}}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{{{ contact.first_name }}}}, <a href="https://example.com/{name}?utm_source=nurture&amp;x=1">lire</a></mj-text>
<mj-text><a href="{{{{ view_in_browser_url }}}}">Voir en ligne</a> · <a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
CONTACTS = (
    "email,first_name,company,stage\n"
    "anne@example.com,Anne,Atelier,lead\n"
    "bob@example.com,Bob,Batipro,lead\n"
    "carla@example.com,Carla,Cabinet,subscriber\n"
)

_HREF = re.compile(r'(?:href|src)="([^"]+)"')


class Web(Harness):
    """The app, its engine and what it sent."""

    def __init__(self, root: Path, sessions: sessionmaker[Session], tmp: Path) -> None:
        super().__init__(
            load_project(root), sessions, EngineOptions(base_url=BASE_URL), START, SIGNING_KEY
        )
        self.settings = Settings(
            _env_file=None,
            api_keys=f"other-key-0123456789, {API_KEY}",
            secret_key=SIGNING_KEY,
            base_url=BASE_URL,
            webhook_secret=WEBHOOK_SECRET,
            mailgun_signing_key=MAILGUN_KEY,
        )
        self.app = create_app(self.engine, self.settings)
        self.client = TestClient(self.app, base_url=BASE_URL, follow_redirects=False)
        self.auth = {"Authorization": f"Bearer {API_KEY}"}
        self._tmp = tmp
        self._setup_events = 0

    def import_rows(self, text: str) -> None:
        self.import_csv(text)

    def move_clock(self, **delta: float) -> None:
        """Time passes; nothing runs (`later` would also run the engine)."""
        self.at(self.clock.now() + timedelta(**delta))

    def sent_to(self, email: str) -> list[CapturedEmail]:
        return self.transport.for_recipient(email)

    def links(self, message: CapturedEmail) -> list[str]:
        """Every href and src of the HTML part, unescaped, in order."""
        body = message.parsed().get_body(("html",))
        assert body is not None
        return [html.unescape(url) for url in _HREF.findall(body.get_content())]

    def link(self, message: CapturedEmail, prefix: str) -> str:
        """The path (no host) of the first link starting with BASE_URL + prefix.

        Links in the HTML are click-tracked (`/t/c/<token>`), except the
        unsubscribe link: the target of a tracked link counts too.
        """
        urls = self.links(message)
        urls += [tracked_target(u) for u in urls if u.startswith(BASE_URL + "/t/c/")]
        found = [u for u in urls if u.startswith(BASE_URL + prefix)]
        assert found, f"no {prefix} link in {urls}"
        return found[0].removeprefix(BASE_URL)

    def send_of(self, message: CapturedEmail) -> Send:
        with self.sessions() as session:
            send = session.get(Send, int(message.send_id))
            assert send is not None
            return send

    def set_up(self) -> None:
        """The world is ready: `events` leaves out what setting it up recorded (the
        import's `stage.changed` events), so a test sees what its own requests did."""
        with self.sessions() as session:
            self._setup_events = session.scalar(select(func.max(Event.id))) or 0

    def events(self, kind: str | None = None) -> list[Event]:
        """The events recorded since `set_up`, of `kind` if given."""
        with self.sessions() as session:
            query = select(Event).where(Event.id > self._setup_events).order_by(Event.id)
            if kind is not None:
                query = query.where(Event.type == kind)
            return list(session.scalars(query))


def write_project(root: Path, config: str = CONFIG) -> Path:
    return testing.write_project(
        root,
        config,
        {"lead-nurture": LEAD},
        {
            f"lead/{name}": TEMPLATE.format(subject=subject, name=name)
            for name, subject in (("welcome", "Bienvenue"), ("guide", "Le guide"))
        },
    )


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


@pytest.fixture
def web(project_dir: Path, sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Web]:
    """Anne and Bob (leads) got the welcome email; Carla (subscriber) got nothing."""
    w = Web(project_dir, sessions, tmp_path)
    with clock.using(w.clock):
        w.import_rows(CONTACTS)
        w.tick()
        assert len(w.transport.messages) == 2
        w.set_up()
        with w.client:
            yield w


def tracked_target(url: str) -> str:
    """The URL a click-tracking link redirects to (read from its signed token)."""
    token = url.rsplit("/", 1)[1]
    target = Signer(SIGNING_KEY).verify("click", token)["u"]
    assert isinstance(target, str)
    return target


def anne_welcome(web: Web) -> CapturedEmail:
    [message] = web.sent_to("anne@example.com")
    return message


def event_dict(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "evt-1",
        "type": "page.visited",
        "at": START.isoformat(),
        "contact": {"email": "anne@example.com"},
        "properties": {"url": "https://example.com/pricing"},
    }
    return base | fields
