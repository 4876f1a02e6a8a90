"""The example project's own workflow tests, written as its marketing team would.

They use only `nurture.testing`: the `simulate` fixture runs this repository's
nurture.yaml, workflows and templates on the real engine under a virtual clock.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from nurture.testing import Simulate

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

    drawn = {c["email"]: first.variants(c["email"])["guide"] for c in leads}
    assert set(drawn.values()) == {"a", "b"}
    assert drawn == {c["email"]: again.variants(c["email"])["guide"] for c in leads}
    for c in leads:
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
