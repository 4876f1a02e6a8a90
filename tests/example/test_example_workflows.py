"""The example project's own workflow tests, written as its marketing team would.

They use only `nurture.testing` (and, for a crowd, `nurture demo`'s contacts): the
`simulate` fixture runs this repository's nurture.yaml, workflows and templates on the
real engine under a virtual clock.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nurture.testing import SimResult, Simulate, simulate_project
from nurture.tools.demo import write_contacts

PARIS = ZoneInfo("Europe/Paris")
START = "2026-01-05T08:00:00+00:00"  # a Monday, 9 h in Paris: inside the send window

ANNE = {
    "email": "anne.martin@dubreuil.example.com",
    "first_name": "Anne",
    "company": "Atelier Dubreuil",
    "stage": "lead",
    "timezone": "Europe/Paris",
}


def lead(email: str, first_name: str) -> dict[str, str]:
    return {**ANNE, "email": email, "first_name": first_name}


def test_a_new_lead_gets_the_welcome_then_the_guide_two_days_later(simulate: Simulate) -> None:
    result = simulate(contacts=[ANNE], start=START, days=4)

    emails = result.emails_to(ANNE["email"])
    assert [template for template, _ in emails] == ["lead/welcome", "lead/guide"]
    (_, welcome_at), (_, guide_at) = emails
    assert guide_at - welcome_at == timedelta(days=2)
    local = guide_at.astimezone(PARIS)
    assert local.weekday() < 5 and 9 <= local.hour < 18  # inside the send window
    assert result.subjects_to(ANNE["email"])[1] == "Votre grille de scoring en 30 minutes"


def test_the_guide_tests_two_subject_lines_and_a_lead_always_gets_the_same(
    simulate: Simulate,
) -> None:
    leads = [lead(f"lead{n}@example.com", f"Lead {n}") for n in range(30)]
    subjects = {
        "a": "Votre grille de scoring en 30 minutes",
        "b": "Une grille de scoring en 30 minutes, chiche ?",
    }

    first = simulate(contacts=leads, start=START, days=3)
    again = simulate(contacts=leads, start=START, days=3)

    # a lead in lead-nurture's holdout gets none of its emails, so no guide
    emailed = [c for c in leads if not first.held_out(c["email"])]
    assert 0 < len(emailed) < len(leads)
    drawn = {c["email"]: first.variants(c["email"])["guide"] for c in emailed}
    assert set(drawn.values()) == {"a", "b"}
    assert drawn == {c["email"]: again.variants(c["email"])["guide"] for c in emailed}
    for c in emailed:
        (guide,) = [e for e in first.emails(c["email"]) if e.step == "guide"]
        assert guide.subject == subjects[drawn[c["email"]]]


def test_a_lead_who_ignores_the_guide_gets_a_reminder_then_leaves(simulate: Simulate) -> None:
    result = simulate(contacts=[ANNE], start=START, days=14)

    assert [t for t, _ in result.emails_to(ANNE["email"])] == [
        "lead/welcome",
        "lead/guide",
        "lead/reminder",
    ]
    assert result.exits(ANNE["email"]) == [("lead-nurture", "no-engagement")]


def test_a_lead_who_clicks_the_guide_gets_the_case_study(simulate: Simulate) -> None:
    paul = lead("paul.girard@batipro.example.com", "Paul")
    result = simulate(
        contacts=[paul],
        events=[
            {
                "type": "email.clicked",
                "email": paul["email"],
                "at": "+2d3h",  # three hours after the guide
                "step": "guide",
                "workflow": "lead-nurture",
            }
        ],
        start=START,
        days=14,
    )

    templates = [t for t, _ in result.emails_to(paul["email"])]
    assert templates[:3] == ["lead/welcome", "lead/guide", "lead/case-study"]
    assert "lead/reminder" not in templates
    assert result.exits(paul["email"]) == [("lead-nurture", "completed")]


def test_a_lead_scoring_past_100_goes_to_sales_and_nurturing_stops(simulate: Simulate) -> None:
    claire = lead("claire.petit@medilab.example.com", "Claire")
    other = lead("luc.moreau@hydrofluid.example.com", "Luc")
    email = claire["email"]
    result = simulate(
        contacts=[claire, other],
        events=[
            {"type": "content.downloaded", "email": email, "at": "+1d2h", "content": "livre-blanc"},
            {
                "type": "page.visited",
                "email": email,
                "at": "+1d3h",
                "url": "https://example.com/pricing",
            },
            {
                "type": "page.visited",
                "email": email,
                "at": "+1d4h",
                "url": "https://example.com/pricing",
            },
            {"type": "webinar.registered", "email": email, "at": "+1d5h"},
            {"type": "demo.requested", "email": email, "at": "+1d6h"},
        ],
        start=START,
        days=21,
    )

    assert result.stages_of(email)[-1] == "sql"
    handoffs = [h for h in result.handoffs() if h.contact == email]
    assert len(handoffs) == 1
    assert handoffs[0].owner in {"sophie.durand@example.com", "marc.leroy@example.com"}
    assert [h.contact for h in result.handoffs()] == [email]  # Luc stays in nurturing
    # No automated email after the handoff, from any workflow.
    assert all(at <= handoffs[0].at for _, at in result.emails_to(email))
    assert len(result.emails_to(other["email"])) >= 3


def test_an_unsubscribed_contact_gets_nothing_more(simulate: Simulate) -> None:
    denis = lead("denis.fabre@proxitel.example.com", "Denis")
    result = simulate(
        contacts=[denis],
        events=[{"type": "email.unsubscribed", "email": denis["email"], "at": "+1h"}],
        start=START,
        days=30,
    )

    assert result.templates_to(denis["email"]) == ["lead/welcome"]  # sent before unsubscribing


def test_a_lead_back_on_the_pricing_page_three_times_in_a_week_is_a_pricing_hunter(
    simulate: Simulate,
) -> None:
    email = ANNE["email"]
    visits = [
        {"type": "page.visited", "email": email, "at": at, "url": "https://example.com/pricing"}
        for at in ("+1d", "+3d", "+5d")
    ]
    result = simulate(contacts=[ANNE], events=visits, start=START, days=10)

    entered, left = result.segments_of(email)
    assert (entered.segment, entered.entered) == ("pricing-hunters", True)
    assert entered.at - result.start == timedelta(days=5)  # the third visit
    assert "3 page.visited" in entered.why
    # a week after the first visit only two count: out again, with nothing else happening
    assert (left.segment, left.entered) == ("pricing-hunters", False)
    assert left.at - result.start == timedelta(days=8)
    assert not result.in_segment(email, "pricing-hunters")
    # `simulate --json` prints them as `segment` lines
    lines = [r.as_json() for r in result.records if r.kind == "segment"]
    assert [(line["contact"], line.get("entered"), line.get("left")) for line in lines] == [
        (email, "pricing-hunters", None),
        (email, None, "pricing-hunters"),
    ]


# --- the experiments over 500 synthetic contacts ----------------------------------------
#
# `nurture demo`'s contacts (60 % subscribers, 35 % leads, 5 % MQLs) with the example's
# reactions, and one lead in two coming back three times to the pricing page one morning
# of its first two days (before any email of the example sends anyone there).

PROJECT = Path(__file__).parents[2]
REACTIONS = PROJECT / "examples" / "reactions.yaml"
CONTACTS = 500
PRICING = "https://example.com/pricing"
HOUR = timedelta(hours=1)


def _within_sampling_error(count: int, total: int, share: float) -> bool:
    """`count` of `total` draws is within three standard deviations of `share`."""
    return abs(count - total * share) <= 3 * math.sqrt(total * share * (1 - share))


@dataclass(frozen=True)
class Run:
    contacts: list[dict[str, str]]
    visits: dict[str, list[datetime]]  # email → its pricing-page visits
    result: SimResult


def _run(folder: Path) -> Run:
    contacts_file = folder / "contacts.csv"
    write_contacts(contacts_file, CONTACTS, seed=42)
    with contacts_file.open(encoding="utf-8") as handle:
        contacts = list(csv.DictReader(handle))
    leads = [c["email"] for c in contacts if c["stage"] == "lead"]
    start = datetime.fromisoformat(START)
    visits = {
        email: [start + timedelta(days=n % 2, hours=hour) for hour in (1, 2, 3)]
        for n, email in enumerate(leads[::2])
    }
    events = [
        {"type": "page.visited", "email": email, "at": f"+{(at - start) // HOUR}h", "url": PRICING}
        for email, moments in visits.items()
        for at in moments
    ]
    result = simulate_project(
        PROJECT, contacts_file, events, start=START, days=10, seed=42, reactions=REACTIONS
    )
    return Run(contacts, visits, result)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """The same simulation twice, with the same seed."""
    return _run(tmp_path_factory.mktemp("first")), _run(tmp_path_factory.mktemp("again"))


def _assignments(run: Run) -> dict[str, tuple[object, ...]]:
    result = run.result
    return {
        c["email"]: (
            tuple(sorted(result.variants(c["email"]).items())),
            tuple(sorted(result.arms(c["email"]).items())),
            tuple(result.held_out(c["email"])),
        )
        for c in run.contacts
    }


def test_the_same_seed_draws_the_same_variants_arms_and_holdout(runs: tuple[Run, Run]) -> None:
    first, again = runs
    assert _assignments(first) == _assignments(again)
    assert first.result.winners() == again.result.winners()


def test_the_guide_variants_follow_their_weights_until_the_question_wins(
    runs: tuple[Run, Run],
) -> None:
    result = runs[0].result
    guides = [r for r in result.records if r.kind == "send" and r.step == "guide"]
    (winner,) = result.winners()
    assert (winner.workflow, winner.step, winner.variant) == ("lead-nurture", "guide", "b")
    assert winner.metric == "human_clicks"  # lead/guide-question: 55 % clicks against 30 %
    # decided only once its window has passed since the first guide
    assert winner.at >= guides[0].at + timedelta(days=7)

    drawn = [r.details["variant"] for r in guides if r.at < winner.at]
    assert len(drawn) >= 2 * 60  # min_sample per variant
    assert _within_sampling_error(drawn.count("a"), len(drawn), 0.5)  # weights: equal
    assert all(r.details["variant"] == "b" for r in guides if r.at >= winner.at)


def test_the_pricing_split_sends_half_a_written_answer_and_half_a_call(
    runs: tuple[Run, Run],
) -> None:
    run = runs[0]
    arms = [run.result.arms(c["email"]).get("approach") for c in run.contacts]
    drawn = [arm for arm in arms if arm is not None]
    assert len(drawn) >= 40
    assert set(drawn) == {"answer", "offer-call"}
    assert _within_sampling_error(drawn.count("answer"), len(drawn), 0.5)
    templates = {"answer": "pricing/answer", "offer-call": "pricing/call"}
    emailed = 0
    for c in run.contacts:
        arm = run.result.arms(c["email"]).get("approach")
        if arm is None:
            continue
        sent = [
            e.template for e in run.result.emails(c["email"]) if e.workflow == "pricing-followup"
        ]
        # each gets its arm's email only (or none: held by the frequency cap until it moved on)
        assert sent in ([], [templates[arm]])
        emailed += len(sent)
    assert emailed >= len(drawn) // 2


def test_leads_held_out_of_lead_nurture_get_none_of_its_emails(runs: tuple[Run, Run]) -> None:
    run = runs[0]
    enrolled = [
        r.contact for r in run.result.records if r.kind == "enroll" and r.workflow == "lead-nurture"
    ]
    held = [email for email in enrolled if "lead-nurture" in run.result.held_out(email)]
    assert held and _within_sampling_error(len(held), len(enrolled), 0.10)
    for email in held:
        assert [e for e in run.result.emails(email) if e.workflow == "lead-nurture"] == []
        assert ("welcome", "holdout") in run.result.skips(email)  # kept in, never emailed
    treated = set(enrolled) - set(held)
    assert all(
        any(e.workflow == "lead-nurture" for e in run.result.emails(email)) for email in treated
    )


def test_a_pricing_hunter_enters_the_pricing_workflow_at_its_third_visit(
    runs: tuple[Run, Run],
) -> None:
    run = runs[0]
    tick = timedelta(seconds=1)  # the scheduler's interval
    hunters = 0
    for c in run.contacts:
        email = c["email"]
        entries = [s for s in run.result.segments_of(email) if s.entered]
        if not entries:
            continue
        enrolled = [
            r.at
            for r in run.result.timeline(email)
            if r.kind == "enroll" and r.workflow == "pricing-followup"
        ]
        assert enrolled and entries[0].at <= enrolled[0] <= entries[0].at + tick
        if email in run.visits:  # (others may get there through the emails' links)
            hunters += 1
            third = run.visits[email][2]
            assert entries[0].at == third
            assert enrolled[0] <= third + tick
    assert hunters == len(run.visits)  # every lead who came three times is in
