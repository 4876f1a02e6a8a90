"""Figures and times for people (`nurture.readable`): the rounding, the local times,
and every place a person reads them — the sales emails, `explain`, `handoffs`."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import nurture.clock as clock
import nurture.readable as readable
from nurture.definitions.loader import load_project
from nurture.engine.service import EngineOptions
from nurture.testing import Harness, write_project

PARIS = "Europe/Paris"
#: A time as machines write it: what no person-facing text may show.
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
#: A number with decimals: what no score shown to a person may have.
DECIMAL = re.compile(r"\d+[.,]\d+")


# -- the module ----------------------------------------------------------------------------------


def test_scores_round_to_whole_numbers_halves_away_from_zero() -> None:
    assert [readable.score(v) for v in (139.9999, 24.9991, 24.5, 25.4999, -2.5, 0.0)] == [
        "140",
        "25",
        "25",  # Python's round() says 24
        "25",
        "-3",
        "0",
    ]
    assert readable.score(None) == "—"
    assert readable.points(-50.0) == "-50" and readable.points(9.6) == "+10"


def test_the_breakdown_adds_up_to_the_total_shown() -> None:
    assert readable.score_breakdown(24.9991, 10.0) == "25 (fit 10 + engagement 15)"
    assert readable.score_parts(20.8, 10.4) == (21, 10, 11)  # not 10 + 10 = 21


def test_local_times_are_in_the_readers_zone_and_language() -> None:
    moment = datetime(2026, 12, 4, 15, 51, 51, 943049, tzinfo=UTC)
    now = moment - timedelta(days=2)
    assert readable.local_time(moment, PARIS, "en_GB", now) == "4 Dec, 16:51"
    assert readable.local_time(moment.isoformat(), PARIS, "fr", now) == "4 déc. 16:51"
    assert readable.local_time(moment, "America/New_York", "en", now) == "Dec 4, 10:51\u202fAM"
    assert readable.local_time(moment, PARIS, "fr", now - timedelta(days=365)) == (
        "4 déc. 2026 16:51"  # another year: it is named
    )
    assert readable.local_time_from_now(moment, PARIS, "en_GB", now) == ("4 Dec, 16:51 (in 2 days)")
    assert readable.relative(moment, now, "fr") == "dans 2 jours"
    assert readable.relative(now, moment, "fr") == "il y a 2 jours"
    assert readable.stamp(moment, PARIS) == "2026-12-04 16:51"


def test_a_stale_zone_reads_as_utc_and_an_unknown_language_says_so() -> None:
    moment = datetime(2026, 12, 4, 15, 51, tzinfo=UTC)
    assert readable.local_time(moment, "Mars/Olympus", "en_GB", moment) == "4 Dec, 15:51"
    with pytest.raises(readable.UnknownLanguage, match="unknown language 'xx-yy'"):
        readable.local_time(moment, PARIS, "xx-yy", moment)


# -- a project handing leads to sales, in Paris -------------------------------------------------

START = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # a Thursday
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
  fit:
    - {when: "contact.company == 'Atelier'", points: 10}
  decay: {half_life: 30d}
  thresholds: {lead: 20, mql: 70, sql: 100}
handoff:
  at: sql
  assign: {round_robin: [alice@example.com]}
  notify:
    - email: owner
  sla: {accept_within: 24h, escalate_after: 12h, escalate_to: boss@example.com}
sending:
  from: "Équipe <bonjour@example.com>"
  default_timezone: Europe/Paris
"""
WAITING = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - wait: 2d
  - send: lead/one
"""
BODY = (
    '---\nsubject: "one"\n---\n<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-text>'
    "</mj-column></mj-section></mj-body></mjml>\n"
)


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Harness]:
    root = write_project(
        tmp_path / "p",
        CONFIG,
        {"lead-nurture": WAITING},
        {"lead/one": BODY},
        example_templates=("_layouts", "sales"),
    )
    options = EngineOptions(webhook_secret="w" * 32, base_url="https://nurture.example.com")
    harness = Harness(load_project(root), sessions, options, START)
    with clock.using(harness.clock):
        harness.import_csv(
            "email,first_name,company,stage\n"
            "anne@example.com,Anne,Atelier,lead\n"
            "bob@example.com,Bob,Batipro,subscriber\n"
        )
        # Days apart, so the engagement decays: the score is 137.35…, never a whole number.
        harness.signal("content.downloaded", "anne@example.com", title="Livre blanc")
        harness.at(START + timedelta(days=2))
        harness.signal("demo.requested", "anne@example.com")
        harness.at(START + timedelta(days=3))  # Sunday 09:00 UTC
        harness.signal("content.downloaded", "anne@example.com", title="Étude de cas")
        harness.signal("demo.requested", "anne@example.com")  # sql: handed to alice
        harness.signal("content.downloaded", "bob@example.com")  # lead: waits 2 days
        harness.run()
        yield harness


def _chores(world: Harness) -> None:
    world.engine.housekeeping(clock.now())
    world.engine.notifier.deliver()


def test_no_sales_email_shows_a_utc_time_or_an_unrounded_score(world: Harness) -> None:
    _chores(world)
    world.at(START + timedelta(days=4))  # Monday 09:00 UTC: SLA due, weekly digest due
    _chores(world)
    _chores(world)
    world.at(START + timedelta(days=4, hours=12))  # escalation
    _chores(world)
    _chores(world)
    sales = [m.email for m in world.transport.messages if m.email.to != "bob@example.com"]
    subjects = {email.subject.split(" ")[0] for email in sales}
    assert subjects == {"Lead", "Rappel", "Vos", "Escalade"}  # handoff, reminder, digest, SLA
    for email in sales:
        for part in (email.subject, email.html, email.text):
            assert not ISO_TIME.search(part), (email.subject, ISO_TIME.search(part))
        assert not DECIMAL.search(email.text), (email.subject, DECIMAL.search(email.text))
    [handoff] = [e for e in sales if e.subject.startswith("Lead qualifié")]
    # Handed over Sunday 10:00 in Paris, to accept within 24 h: local, French, and how long.
    assert "À accepter avant | 23 nov. 10:00 (dans 1 jour)" in handoff.text
    assert re.search(r"Score \| 137 points", handoff.text)


def _cli(world: Harness, url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, str]:
    """A `nurture` command in this process on the world's database: (printed, echoed)."""
    import nurture.cli.common as cli
    from nurture.cli.app import app
    from nurture.settings import get_settings

    monkeypatch.setenv("NURTURE_DATABASE_URL", url)
    get_settings.cache_clear()
    console = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", console)
    monkeypatch.setattr("nurture.cli.project.console", console)
    root = world.engine.project.root
    with clock.using(world.clock):
        result = CliRunner().invoke(app, [*args, "--project", str(root)])
    get_settings.cache_clear()
    assert result.exit_code == 0, (result.output, result.exception)
    return console.export_text(), result.output


def test_handoffs_show_and_list_agree_on_the_score_and_the_time(
    world: Harness, migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed, _ = _cli(world, migrated_sqlite_url, monkeypatch, "handoffs", "list")
    shown, _ = _cli(world, migrated_sqlite_url, monkeypatch, "handoffs", "show", "1")
    [row] = [line for line in listed.splitlines() if "anne@example.com" in line]
    assert " 137 " in row and "due 23 Nov, 10:00" in row
    assert "score 137 (fit 10 + engagement 127) · hot" in shown
    assert "SLA 23 Nov, 10:00 (in 1 day)" in shown
    for text in (listed, shown):
        assert not ISO_TIME.search(text) and not DECIMAL.search(text)
        assert "times in Europe/Paris" in text
    _, exact = _cli(world, migrated_sqlite_url, monkeypatch, "handoffs", "show", "1", "--json")
    data = json.loads(exact)  # machines: exact
    assert data["sla_due_at"] == "2026-11-23T09:00:00+00:00"
    assert 137 < data["snapshot"]["score"]["total"] < 138


def test_explain_rounds_the_score_and_says_when_in_local_time(
    world: Harness, migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.at(START + timedelta(days=4))  # a day after Bob's download: his points decayed
    printed, _ = _cli(world, migrated_sqlite_url, monkeypatch, "explain", "bob@example.com")
    assert "score 24 (fit 0 + engagement 24)" in printed
    # The wait ends 2 days after Sunday 10:00 in Paris; a day has passed since.
    assert "next: waiting until 24 Nov, 10:00 (in 1 day), then send lead/one" in printed
    assert not ISO_TIME.search(printed)
    _, exact = _cli(world, migrated_sqlite_url, monkeypatch, "explain", "bob@example.com", "--json")
    data = json.loads(exact)
    assert 24 < data["score"]["now"] < 25
    [enrollment] = data["enrollments"]
    assert enrollment["next_run_at"] == "2026-11-24T09:00:00+00:00"
    assert enrollment["next"] == "waiting until 2026-11-24T09:00:00+00:00, then send lead/one"


def test_the_digest_csv_has_local_times_and_rounded_scores(
    world: Harness, migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "digest.csv"
    world.at(START + timedelta(days=3, hours=1))
    printed, _ = _cli(
        world, migrated_sqlite_url, monkeypatch, "handoffs", "digest", "--csv", str(target)
    )
    assert "anne@example.com Atelier · 137 · open" in printed
    [row] = list(csv.DictReader(target.open(encoding="utf-8")))
    assert (row["created_at"], row["timezone"], row["score"]) == (
        "2026-11-22 10:00",  # Sunday 09:00 UTC
        "Europe/Paris",
        "137",
    )


def test_a_template_asking_for_an_unknown_language_fails_validate_at_its_line(
    tmp_path: Path,
) -> None:
    from nurture.rendering import TemplateLibrary, sample_context

    root = write_project(
        tmp_path / "p",
        "stages: [subscriber, lead]\n",
        templates={
            "lead/one": '---\nsubject: "one"\n---\n<mjml><mj-body><mj-section><mj-column>\n'
            '<mj-text>{{ now | local_time("fr") }}, {{ contact.score | score }}</mj-text>\n'
            '<mj-text>{{ now | local_time("klingon") }}</mj-text>\n'
            "</mj-column></mj-section></mj-body></mjml>\n"
        },
    )
    [problem] = TemplateLibrary(root / "templates").check("lead/one", sample_context())
    assert problem.line == 6 and "unknown language 'klingon'" in problem.message
