"""Every "never email someone we shouldn't" rule, through the engine, over real SMTP.

The engine sends through `SMTPTransport` (built from settings, DKIM included)
to the aiosmtpd server of tests/smtp_server.py; the assertions read what
arrived there: the List-Unsubscribe headers, a DKIM signature that verifies
against the published key, the bodies, and who got nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.definitions.loader import load_project
from nurture.delivery.consent import mailto_token
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle.importer import import_contacts
from nurture.lifecycle.incoming import parse_event
from nurture.settings import Settings
from nurture.store.models import Contact, Send
from nurture.testing import write_project
from nurture.tokens import Signer
from nurture.tools.privacy import erase_person
from nurture.transports import transport_from_settings
from tests.dkim_support import DOMAIN, SELECTOR, dkim_key
from tests.smtp_server import SMTPTestServer

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BASE_URL = "https://nurture.example.com"
SIGNING_KEY = "s" * 32

CONFIG = """\
stages: [subscriber, lead, sql]
prospect_stage: sql
sending:
  from: "Équipe Exemple <bonjour@example.com>"
  require_consent: true
"""
WORKFLOW = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
"""
TEMPLATE = """\
---
subject: "Bienvenue {{ contact.first_name }}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{ contact.first_name }} ! <a href="{{ unsubscribe_url }}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
CONTACTS = """\
email,first_name,stage,consent
anne@example.com,Anne,lead,granted
bob@example.com,Bob,lead,granted
carla@example.com,Carla,lead,withdrawn
dan@example.com,Dan,lead,granted
eve@example.com,Eve,lead,granted
fred@example.com,Fred,lead,
gina@example.com,Gina,lead,granted
"""


class World:
    def __init__(self, root: Path, sessions: sessionmaker[Session], server: SMTPTestServer) -> None:
        self.clock = clock.VirtualClock(START)
        self.sessions = sessions
        self.server = server
        self.root = root
        settings = Settings(
            _env_file=None,
            smtp_url=server.url,
            dkim_selector=SELECTOR,
            dkim_domain=DOMAIN,
            dkim_private_key=dkim_key().private_pem,
        )
        self.transport = transport_from_settings(settings)
        self.engine = Engine(
            load_project(root),
            sessions,
            self.transport,
            Signer(SIGNING_KEY),
            EngineOptions(base_url=BASE_URL),
        )

    def import_csv(self, text: str) -> None:
        path = self.root / "contacts.csv"
        path.write_text(text)
        config = self.engine.project.config
        import_contacts(self.sessions, path, stages=config.stages, on_batch=self.engine.on_import)

    def event(self, event_id: str, kind: str, email: str, **properties: object) -> None:
        data = {
            "id": event_id,
            "type": kind,
            "at": clock.now().isoformat(),
            "contact": {"email": email},
            "properties": properties,
        }
        self.engine.lifecycle.ingestor.ingest(
            self.sessions, [parse_event(data, now=clock.now())], "test"
        )

    def received_by(self) -> list[str]:
        return sorted(r for m in self.server.messages for r in m.recipients)


@pytest.fixture
def world(
    tmp_path: Path, sessions: sessionmaker[Session], smtp_server: SMTPTestServer
) -> Iterator[World]:
    root = write_project(
        tmp_path / "project", CONFIG, {"lead-nurture": WORKFLOW}, {"lead/welcome": TEMPLATE}
    )
    w = World(root, sessions, smtp_server)
    with clock.using(w.clock):
        yield w
    w.transport.close()


def test_only_the_people_we_may_email_get_email_and_it_is_signed(world: World) -> None:
    world.import_csv(CONTACTS)
    with world.sessions.begin() as session:
        suppression.suppress(session, "bob@example.com", "manual", clock.now(), source="test")
        erase_person(session, "eve@example.com", clock.now())
    world.import_csv("email,first_name,stage,consent\neve@example.com,Eve,lead,granted\n")
    world.event("pause-dan", "email.paused", "dan@example.com", days=30)

    world.engine.advance(world.engine.claim_due(), deliver=False)  # Anne's and Gina's claimed
    world.event("unsub-gina", "email.unsubscribed", "gina@example.com")
    world.engine.deliver()

    # Bob suppressed, Carla unsubscribed, Dan paused, Eve erased then re-imported,
    # Fred without consent (require_consent), Gina unsubscribed after the claim.
    assert world.received_by() == ["anne@example.com"]
    with world.sessions() as session:
        sends = session.execute(
            select(Contact.email, Send.status, Send.error).join(
                Contact, Contact.id == Send.contact_id
            )
        ).all()
    assert sorted(map(tuple, sends)) == [
        ("anne@example.com", "sent", None),
        ("gina@example.com", "skipped", "unsubscribed"),  # claimed, then not sent
    ]
    [received] = world.server.messages
    message = received.parsed()
    assert not message.defects
    assert received.envelope_from == "bonjour@example.com"
    assert str(message["Subject"]) == "Bienvenue Anne"

    url, mailto = (part.strip()[1:-1] for part in message["List-Unsubscribe"].split(","))
    assert url.startswith(f"{BASE_URL}/u/")
    parts = urlsplit(mailto)
    assert (parts.scheme, parts.path) == ("mailto", "unsubscribe@example.com")
    assert mailto_token(parse_qs(parts.query)["subject"][0]) == url.rsplit("/", 1)[1]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",))
    assert html is not None and url in html.get_content()

    assert received.data.startswith(b"DKIM-Signature:")
    assert dkim_key().verify(received.data)
    signed = message["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
    assert "d=example.com;" in signed and "c=relaxed/relaxed;" in signed
    assert "list-unsubscribe:list-unsubscribe-post" in signed.lower()
    assert not dkim_key().verify(received.data.replace(b"Bonjour Anne", b"Bonjour Anna"))

    # The pause ends: Dan's email was deferred, never dropped.
    world.clock.advance_to(START + timedelta(days=30))
    world.engine.advance(world.engine.claim_due())
    world.engine.deliver()
    assert world.received_by() == ["anne@example.com", "dan@example.com"]
    assert dkim_key().verify(world.server.messages[-1].data)
