"""A template broken while the engine runs never loses an email.

The field report: with the engine running, a typo (`contact.firstname`) saved
in a template, then a new lead imported — the send was failed for good, with
no error in the log, and fixing the template did not send it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.testing as testing
from nurture.definitions.loader import load_project
from nurture.store.metrics import sends_held
from nurture.store.models import Send
from nurture.testing import Harness

CONFIG = "stages: [subscriber, lead, sql]\nprospect_stage: sql\n"
LEAD = "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
WELCOME = """\
---
subject: "Bienvenue {{ contact.first_name }}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{ contact.first_name }}, voici le guide.</mj-text>
<mj-text><a href="{{ unsubscribe_url }}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
TYPO = WELCOME.replace("Bonjour {{ contact.first_name }}", "Bonjour {{ contact.firstname }}")
UNCLOSED = WELCOME.replace("</mj-column>", "")


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Harness]:
    root = testing.write_project(
        tmp_path / "project", CONFIG, {"lead-nurture": LEAD}, {"lead/welcome": WELCOME}
    )
    harness = Harness(load_project(root), sessions)
    with clock.using(harness.clock):
        yield harness


def _edit(world: Harness, text: str) -> None:
    """Save the template as a person would while the engine runs (the engine notices
    an edit within a second)."""
    path = world.engine.project.templates_dir / "lead" / "welcome.mjml"
    time.sleep(1.1)
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _lead(world: Harness, email: str, name: str) -> None:
    world.import_csv(f"email,first_name,stage\n{email},{name},lead\n")
    world.tick()


def _sends(world: Harness) -> list[Send]:
    with world.sessions() as session:
        return list(session.scalars(select(Send).order_by(Send.id)))


@pytest.mark.parametrize("broken", [TYPO, UNCLOSED], ids=["jinja-typo", "unclosed-mj-column"])
def test_an_edit_that_breaks_a_sent_template_sends_its_last_good_version(
    world: Harness, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    _lead(world, "anne@example.com", "Anne")
    _edit(world, broken)
    with caplog.at_level(logging.ERROR, logger="nurture.delivery"):
        _lead(world, "bob@example.com", "Bob")
    [message] = world.transport.for_recipient("bob@example.com")
    assert message.subject == "Bienvenue Bob"
    text = message.parsed().get_body(("plain",))
    assert text is not None and "Bonjour Bob, voici le guide." in text.get_content()
    assert [s.status for s in _sends(world)] == ["sent", "sent"]
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("templates/lead/welcome.mjml:")
    assert line.endswith("sending the template's last good version until this is fixed")
    assert "bob@" not in line


def test_a_template_broken_before_its_first_send_holds_the_email_until_fixed(
    world: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _edit(world, TYPO)
    with caplog.at_level(logging.ERROR, logger="nurture.delivery"):
        _lead(world, "anne@example.com", "Anne")
    assert world.transport.for_recipient("anne@example.com") == []
    [send] = _sends(world)
    assert send.status == "claimed" and send.error.startswith("held: templates/lead/welcome.mjml:")
    assert any("its emails are held until this is fixed" in r.getMessage() for r in caplog.records)
    with world.sessions() as session:
        assert sends_held(session) == 1  # /metrics: nurture_sends_held
    world.later(timedelta(minutes=6))
    assert world.transport.for_recipient("anne@example.com") == []  # still broken: still held
    _edit(world, WELCOME)
    world.later(timedelta(minutes=6))
    [message] = world.transport.for_recipient("anne@example.com")
    assert message.subject == "Bienvenue Anne"
    [send] = _sends(world)
    assert (send.status, send.error) == ("sent", None)
    with world.sessions() as session:
        assert sends_held(session) == 0
