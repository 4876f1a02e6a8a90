"""One mailbox, one contact: addresses are normalised once (IDNA, Unicode NFC, case),
whatever door they come in by, and the suppression list is checked on that form."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.addresses import canonical_email, email_problem
from nurture.definitions.loader import load_project
from nurture.store.db import create_engine_for, downgrade, upgrade
from nurture.store.models import Contact
from nurture.testing import Harness, write_project

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
sending:
  from: "Équipe <bonjour@example.com>"
"""
LEAD = "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n  - wait: 30d\n"


def test_the_two_spellings_of_an_international_domain_are_one_address() -> None:
    assert canonical_email("dup.case@bücher.example") == "dup.case@bücher.example"
    assert canonical_email("Dup.Case@xn--bcher-kva.EXAMPLE") == "dup.case@bücher.example"
    assert canonical_email("  Anne@Example.COM ") == "anne@example.com"


def test_a_decomposed_address_is_the_composed_one() -> None:
    decomposed = unicodedata.normalize("NFD", "josé@café.example")
    assert decomposed != "josé@café.example"
    assert canonical_email(decomposed) == "josé@café.example"


def test_a_full_width_address_is_refused_with_what_was_meant() -> None:
    assert canonical_email("ｆｕｌｌ@example.com") is None
    assert email_problem("ｆｕｌｌ@example.com") == (
        "the part before the @ holds full-width or compatibility characters "
        "(did you mean full@example.com?)"
    )


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Harness]:
    root = write_project(tmp_path / "p", CONFIG, {"lead-nurture": LEAD})
    h = Harness(load_project(root), sessions)
    with clock.using(h.clock):
        yield h


def test_both_spellings_import_as_one_contact_and_one_suppression_stops_it(
    world: Harness,
) -> None:
    world.import_csv("email,stage\ndup.case@bücher.example,lead\n")
    report = world.import_csv("email,first_name\ndup.case@xn--bcher-kva.example,Dup\n")
    assert (report.created, report.updated) == (0, 1)
    with world.sessions.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1
        suppression.suppress(session, "DUP.CASE@xn--bcher-kva.example", "manual", clock.now())
    contact = world.contact("dup.case@bücher.example")
    assert contact.first_name == "Dup" and contact.suppression_reason == "manual"
    assert world.signal("page.visited", "dup.case@xn--bcher-kva.example") == "recorded"


def test_an_entry_hashed_from_the_old_spelling_still_suppresses(world: Harness) -> None:
    with world.sessions.begin() as session:
        # An erasure made before addresses were normalised: the punycode spelling's hash.
        session.execute(
            sa.text(
                "INSERT INTO suppressions (email_hash, email, reason, created_at) "
                "VALUES (:h, NULL, 'erased', :at)"
            ),
            {
                "h": suppression._sha256("gone@xn--bcher-kva.example"),
                "at": datetime(2026, 1, 1, tzinfo=UTC),
            },
        )
    report = world.import_csv("email,stage\ngone@bücher.example,lead\n")
    assert report.created == 1
    assert world.contact("gone@bücher.example").suppression_reason == "erased"


def test_the_migration_rewrites_old_spellings_and_leaves_clashes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url)
    downgrade(url, "0004")
    engine = create_engine_for(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for email in ("a@xn--bcher-kva.example", "b@bücher.example", "b@xn--bcher-kva.example"):
            connection.execute(
                sa.text(
                    "INSERT INTO contacts (email, score, fit_score, engagement_score, "
                    "consent_status, properties, tags, soft_bounces, created_at, updated_at) "
                    "VALUES (:e, 0, 0, 0, 'unknown', '{}', '[]', 0, :now, :now)"
                ),
                {"e": email, "now": now},
            )
    upgrade(url)
    with engine.connect() as connection:
        emails = [
            e for (e,) in connection.execute(sa.text("SELECT email FROM contacts ORDER BY id"))
        ]
    engine.dispose()
    assert emails == ["a@bücher.example", "b@bücher.example", "b@xn--bcher-kva.example"]
