"""Engagement you can trust: replays, scanners, image proxies and prefetches don't score.

The emails are real (sent through the engine, links read from the captured
HTML); the scanner is the test client fetching every link of an email the way
a mail-security gateway does, seconds after delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.store.db as db
import nurture.testing as testing
from nurture.store.models import Enrollment, ScoreEntry
from tests.web.conftest import BASE_URL, CONTACTS, TEMPLATE, Web, anne_welcome

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFE_LINKS = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
APPLE_MPP = "Mozilla/5.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
scoring:
  rules:
    - {event: email.opened, points: 5}
    - {event: email.clicked, points: 10}
    - {event: email.clicked, points: 1, count: all}
  thresholds: {mql: 70, sql: 100}
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - id: wait-click
    wait_for: {event: email.clicked, timeout: 3d}
    on_timeout: done
  - id: guide
    send: lead/guide
  - id: done
    score: {points: 0}
"""
CLICKERS = """\
name: clickers
enroll: {event: email.clicked}
steps:
  - wait: 30d
"""


@pytest.fixture
def web(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Web]:
    """Anne and Bob (leads) got the welcome email, waiting for a click; it is 08:00."""
    yield from _web(tmp_path, sessions)


@pytest.fixture(params=["sqlite", "postgresql"])
def web_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Web]:
    """`web` on each database."""
    if request.param == "sqlite":
        yield from _web(tmp_path, request.getfixturevalue("sessions"))
        return
    url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    engine = db.create_engine_for(url)
    try:
        yield from _web(tmp_path, db.session_factory(engine))
    finally:
        engine.dispose()


def _web(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Web]:
    root = testing.write_project(
        tmp_path / "project",
        CONFIG,
        {"lead-nurture": LEAD, "clickers": CLICKERS},
        {
            f"lead/{name}": TEMPLATE.format(subject=subject, name=name).replace(
                "lire</a>", 'lire</a> · <a href="https://example.com/pricing">tarifs</a>'
            )
            for name, subject in (("welcome", "Bienvenue"), ("guide", "Le guide"))
        },
    )
    w = Web(root, sessions, tmp_path)
    with clock.using(w.clock):
        w.import_rows(CONTACTS)
        w.tick()
        w.set_up()
        with w.client:
            yield w


def _tracked(web: Web) -> list[str]:
    """Every tracked link and the open pixel of Anne's welcome email (paths)."""
    urls = web.links(anne_welcome(web))
    return [u.removeprefix(BASE_URL) for u in urls if u.startswith(BASE_URL + "/t/")]


def _every_link(web: Web) -> list[str]:
    return [u.removeprefix(BASE_URL) for u in web.links(anne_welcome(web))]


def _ledger(web: Web, email: str = "anne@example.com") -> list[tuple[str, str, float]]:
    contact = web.contact(email)
    with web.sessions() as session:
        return [
            (row.rule, row.kind, row.points)
            for row in session.scalars(
                select(ScoreEntry)
                .where(ScoreEntry.contact_id == contact.id, ScoreEntry.kind != "decay")
                .order_by(ScoreEntry.id)
            )
        ]


def _waiting_step(web: Web) -> str | None:
    contact = web.contact()
    with web.sessions() as session:
        enrollment = session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == contact.id, Enrollment.workflow == "lead-nurture"
            )
        ).one()
        return enrollment.step


def _workflows(web: Web) -> list[str]:
    contact = web.contact()
    with web.sessions() as session:
        return sorted(
            session.scalars(select(Enrollment.workflow).where(Enrollment.contact_id == contact.id))
        )


def test_a_link_replayed_any_number_of_times_scores_once(web: Web) -> None:
    """The field report: one tracked link fetched 12 times took a contact to sales."""
    click = web.link(anne_welcome(web), "/t/c/")
    web.move_clock(hours=2)
    for _ in range(12):
        assert web.client.get(click, headers={"User-Agent": BROWSER}).status_code == 302
    clicks = web.events("email.clicked")
    assert [e.traffic for e in clicks] == ["human"] + ["repeat"] * 11  # every fetch kept
    assert clicks[1].traffic_reason.startswith("link clicked again")
    anne = web.contact()
    assert anne.stage == "lead"
    assert anne.engagement_score == pytest.approx(10 + 12 * 1, abs=0.01)  # count: all: 1 each
    # The same replay with curl is a machine's from the first fetch.
    bob = web.sent_to("bob@example.com")[0]
    for _ in range(12):
        web.client.get(web.link(bob, "/t/c/"), headers={"User-Agent": "curl/8.5.0"})
    assert {(e.traffic, e.traffic_reason) for e in web.events("email.clicked")[12:]} == {
        ("machine", "user agent: curl")
    }
    assert web.contact("bob@example.com").engagement_score == pytest.approx(12, abs=0.01)


def test_concurrent_replays_of_one_link_score_once(web_on: Web) -> None:
    """Replays arriving together are judged one after the other, not all as the first."""
    web = web_on

    click = web.link(anne_welcome(web), "/t/c/")
    web.move_clock(hours=2)
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: web.client.get(click, headers={"User-Agent": BROWSER}).status_code,
                range(8),
            )
        )
    assert codes == [302] * 8
    traffic = sorted(e.traffic for e in web.events("email.clicked"))
    assert traffic == ["human"] + ["repeat"] * 7
    assert [rule for rule, kind, _ in _ledger(web) if kind == "engagement"].count(
        "rule:1:email.clicked"
    ) == 1


def test_a_scanner_fetching_every_link_seconds_after_delivery_changes_nothing(
    web: Web,
) -> None:
    """A gateway follows every link (unsubscribe and pause pages too), GET and HEAD,
    three seconds after delivery: nothing scores, no wait_for ends, nobody is
    unsubscribed or paused."""
    links = _every_link(web)
    assert any("/u/" in link for link in links) and any("/t/o/" in link for link in links)
    web.move_clock(seconds=3)
    for link in links:
        if link.startswith("/"):
            web.client.head(link, headers={"User-Agent": BROWSER})
            web.client.get(link, headers={"User-Agent": BROWSER})
    hits = web.events("email.clicked") + web.events("email.opened")
    assert hits and {e.traffic for e in hits} == {"machine"}
    assert {e.traffic_reason for e in web.events("email.clicked")} >= {
        "HEAD request",
        "clicked 3s after delivery (a scanner)",
    }
    anne = web.contact()
    assert anne.consent_status != "withdrawn" and anne.suppressed_at is None
    assert anne.paused_until is None and anne.last_engaged_at is None
    assert [rule for rule, kind, _ in _ledger(web) if kind == "engagement"] == [
        "rule:2:email.clicked"  # only the count: all rule; the human rules saw nothing
    ] * len(web.events("email.clicked"))
    web.later(timedelta(hours=1))
    assert _waiting_step(web) == "wait-click"  # still waiting for a person
    assert _workflows(web) == ["lead-nurture"]  # no click workflow started
    assert [m.subject for m in web.sent_to("anne@example.com")] == ["Bienvenue pour Atelier"]


def test_a_person_clicking_later_ends_the_wait(web: Web) -> None:
    click = web.link(anne_welcome(web), "/t/c/")
    web.move_clock(seconds=2)
    web.client.get(click, headers={"User-Agent": SAFE_LINKS})  # the gateway first
    web.later(timedelta(minutes=40))
    assert _waiting_step(web) == "wait-click"
    web.client.get(click, headers={"User-Agent": BROWSER})  # then Anne
    web.later(timedelta(minutes=1))
    assert [e.traffic for e in web.events("email.clicked")] == ["machine", "human"]
    assert len(web.sent_to("anne@example.com")) == 2  # the guide went out
    assert _workflows(web) == ["clickers", "lead-nurture"]
    assert web.contact().last_engaged_at is not None


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (APPLE_MPP, "image proxy: Apple Mail Privacy Protection"),
        (GMAIL_PROXY, "image proxy: Gmail's image proxy"),
    ],
)
def test_image_proxy_opens_score_nothing(web: Web, agent: str, reason: str) -> None:
    [pixel] = [link for link in _tracked(web) if link.startswith("/t/o/")]
    web.move_clock(minutes=10)
    assert web.client.get(pixel, headers={"User-Agent": agent}).status_code == 200
    [opened] = web.events("email.opened")
    assert (opened.traffic, opened.traffic_reason) == ("machine", reason)
    assert web.contact().engagement_score == 0
    web.client.get(pixel, headers={"User-Agent": BROWSER})  # Anne opens it herself
    web.client.get(pixel, headers={"User-Agent": BROWSER})  # and again
    assert [e.traffic for e in web.events("email.opened")] == ["machine", "human", "repeat"]
    assert web.contact().engagement_score == pytest.approx(5, abs=0.01)


def test_prefetched_links_are_a_machines(web: Web) -> None:
    click = web.link(anne_welcome(web), "/t/c/")
    web.move_clock(minutes=10)
    web.client.get(click, headers={"User-Agent": BROWSER, "Sec-Purpose": "prefetch"})
    [event] = web.events("email.clicked")
    assert (event.traffic, event.traffic_reason) == ("machine", "prefetch")


def test_several_links_within_a_second_are_a_machine_even_the_first(web: Web) -> None:
    """A scanner that waits past the delivery window still follows every link at once:
    the first click scored before the second showed the burst, and is taken back."""
    links = [link for link in _tracked(web) if link.startswith("/t/c/")]
    assert len(links) >= 2
    web.move_clock(minutes=30)
    web.client.get(links[0], headers={"User-Agent": BROWSER})
    assert web.contact().engagement_score == pytest.approx(11, abs=0.01)
    web.move_clock(seconds=0.4)
    web.client.get(links[1], headers={"User-Agent": BROWSER})
    clicks = web.events("email.clicked")
    assert [e.traffic for e in clicks] == ["machine", "machine"]
    assert clicks[0].traffic_reason == "several links of the email at once (a scanner)"
    assert web.contact().engagement_score == pytest.approx(2, abs=0.01)  # count: all stays
    assert ("rule:1:email.clicked", "revoked", -10.0) in _ledger(web)


def test_explain_lists_machine_and_repeat_signals_and_the_points_taken_back(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`explain` (the API's and the printed one) says which opens and clicks were a
    machine's or a repeat and why, and what a "revoked" ledger row took back."""
    from rich.console import Console

    from nurture.tools.output import print_explanation

    tracked = _tracked(web)
    links = [link for link in tracked if link.startswith("/t/c/")]
    [pixel] = [link for link in tracked if link.startswith("/t/o/")]
    web.move_clock(minutes=30)
    web.client.get(links[0], headers={"User-Agent": BROWSER})
    web.move_clock(seconds=0.4)
    web.client.get(links[1], headers={"User-Agent": BROWSER})  # a burst: both a machine's
    web.move_clock(hours=1)
    web.client.get(links[0], headers={"User-Agent": "curl/8.5.0"})
    web.client.get(pixel, headers={"User-Agent": BROWSER})
    web.client.get(pixel, headers={"User-Agent": BROWSER})

    explained = web.client.get("/v1/contacts/anne@example.com", headers=web.auth).json()
    signals = explained["signals"]
    assert explained["signals_total"] == len(signals) == 5
    assert [(s["type"], s["template"], s["traffic"]) for s in signals] == [
        ("email.clicked", "lead/welcome", "machine"),
        ("email.clicked", "lead/welcome", "machine"),
        ("email.clicked", "lead/welcome", "machine"),
        ("email.opened", "lead/welcome", "human"),
        ("email.opened", "lead/welcome", "repeat"),
    ]
    assert signals[0]["reason"] == "several links of the email at once (a scanner)"
    assert signals[2]["reason"] == "user agent: curl"
    assert signals[4]["reason"].startswith("email opened again (first at ")
    [revoked] = [line for line in explained["score"]["ledger"] if line["kind"] == "revoked"]
    assert (revoked["rule"], revoked["points"], revoked["event"]) == (
        "rule:1:email.clicked",
        -10.0,
        signals[0]["event"],
    )
    assert revoked["note"] == (  # exact in the API; the command line's is local (test_readable)
        f"points taken back: the email.clicked lead/welcome of {signals[0]['at']} "
        "turned out to be a machine's: several links of the email at once (a scanner)"
    )
    assert {line["note"] for line in explained["score"]["ledger"]} - {revoked["note"]} == {None}

    console = Console(record=True, width=300)
    print_explanation(console, explained)
    text = console.export_text()
    assert "Opens and clicks" in text
    url = signals[2]["url"]
    assert f"email.clicked lead/welcome {url} — machine: user agent: curl (not scored)" in text
    assert "email.opened lead/welcome — human" in text
    assert "email.opened lead/welcome — repeat: email opened again (first at " in text
    assert revoked["note"] in text

    monkeypatch.setattr("nurture.tools.explain.SIGNALS_SHOWN", 2)
    latest = web.client.get("/v1/contacts/anne@example.com", headers=web.auth).json()
    assert latest["signals_total"] == 5 and latest["signals"] == signals[3:]
    console = Console(record=True, width=300)
    print_explanation(console, latest)
    assert "Opens and clicks (the latest 2 of 5)" in console.export_text()
