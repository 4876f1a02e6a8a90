"""Segments without a database: the definition, the judgement, and the executor's use of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.workflow import parse_workflow
from nurture.engine import executor as ex
from nurture.events import EventType, EventView, Traffic
from nurture.lifecycle.segment_rules import judge

CONFIG_TEXT = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
segments:
  pricing-hunters:
    when: "contact.stage == 'lead'"
    events: {type: page.visited, match: "'/pricing' in event.url", count: ">= 3", within: 7d}
  clickers:
    events: {type: email.clicked, count: 2, within: 1d}
  all-clickers:
    events: {type: email.clicked, count: 2, within: 1d, traffic: all}
  quiet:
    events: {type: page.visited, count: "== 0", within: 2d}
"""
CONFIG, PROBLEMS = parse_config(CONFIG_TEXT, "nurture.yaml")
assert CONFIG is not None, PROBLEMS
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _visit(n: int, at: datetime, url: str = "https://example.com/pricing") -> EventView:
    return EventView(f"v{n}", EventType.PAGE_VISITED, at, {"url": url})


def _click(n: int, at: datetime, traffic: str = Traffic.HUMAN) -> EventView:
    return EventView(f"c{n}", EventType.EMAIL_CLICKED, at, {}, traffic)


def _context(stage: str = "lead") -> dict[str, Any]:
    view = ContactView({"id": 1, "stage": stage, "score": 0.0})
    return {"contact": view, "now": NOW, "stage_index": CONFIG.stage_index}


def test_the_issue_segment_parses_into_the_model() -> None:
    segment = CONFIG.segments["pricing-hunters"]
    assert segment.when is not None and segment.when.source == "contact.stage == 'lead'"
    spec = segment.events
    assert spec is not None
    assert (spec.type, spec.comparison, spec.number) == ("page.visited", ">=", 3)
    assert spec.within == timedelta(days=7) and spec.traffic == "human"
    assert CONFIG.segments["clickers"].events is not None
    assert CONFIG.segments["clickers"].events.count_text == ">= 2"  # a bare number: at least


def test_three_pricing_visits_within_the_window_make_a_member_until_the_oldest_counts_no_more() -> (
    None
):
    segment = CONFIG.segments["pricing-hunters"]
    visits = [
        _visit(1, NOW - timedelta(days=6)),
        _visit(2, NOW - timedelta(days=2), "https://example.com/blog"),  # does not match
        _visit(3, NOW - timedelta(days=1)),
    ]
    two = judge(segment, _context(), visits, NOW)
    assert not two.member and two.recheck_at is None  # time alone cannot make three

    visits.append(_visit(4, NOW))
    three = judge(segment, _context(), visits, NOW)
    assert three.member and [e.id for e in three.counted] == ["v1", "v3", "v4"]
    # the day the first visit leaves the 7-day window, the count drops to two
    assert three.recheck_at == NOW - timedelta(days=6) + timedelta(days=7)
    assert three.reason(segment) == (
        "contact.stage == 'lead' holds; 3 page.visited within 1w (needs >= 3)"
    )
    later = judge(segment, _context(), visits, NOW + timedelta(days=1))
    assert not later.member and len(later.counted) == 2

    not_a_lead = judge(segment, _context("mql"), visits, NOW)
    assert not not_a_lead.member and not_a_lead.recheck_at is None


def test_machine_clicks_count_only_where_the_segment_says_traffic_all() -> None:
    clicks = [
        _click(1, NOW - timedelta(hours=1), Traffic.MACHINE),
        _click(2, NOW, Traffic.MACHINE),
        _click(3, NOW, Traffic.REPEAT),
    ]
    assert not judge(CONFIG.segments["clickers"], _context(), clicks, NOW).member
    assert judge(CONFIG.segments["all-clickers"], _context(), clicks, NOW).member


def test_an_absence_segment_is_entered_when_the_last_event_leaves_its_window() -> None:
    segment = CONFIG.segments["quiet"]
    verdict = judge(segment, _context(), [_visit(1, NOW - timedelta(days=1), "/")], NOW)
    assert not verdict.member
    assert verdict.recheck_at == NOW + timedelta(days=1)
    assert judge(segment, _context(), [_visit(1, NOW - timedelta(days=3), "/")], NOW).member


def _workflow(text: str) -> m.Workflow:
    parsed, problems = parse_workflow(text, "w.yaml", CONFIG)
    assert not problems, problems
    assert parsed is not None
    return parsed


def _inputs(now: datetime, segments: frozenset[str] = frozenset(), **extra: Any) -> ex.Inputs:
    view = ContactView({"id": 1, "stage": "lead", "stage_index": 1, "score": 0.0})
    return ex.Inputs(
        contact=view,
        now=now,
        stages=CONFIG.stages,
        prospect_stage=CONFIG.prospect_stage,
        segments=segments,
        **extra,
    )


FOLLOW_UP = _workflow(
    """
name: pricing-follow-up
enroll: {segment: pricing-hunters}
exit: {when: "not in_segment('pricing-hunters') and contact.score > 1000"}
steps:
  - wait_for: {segment: pricing-hunters, timeout: 5d}
    on_timeout: nudge
  - branch:
      - when: "in_segment('pricing-hunters')"
        goto: offer
      - goto: nudge
  - id: offer
    send: lead/offer
  - exit
  - id: nudge
    send: lead/nudge
"""
)


def _sends(decision: ex.Decision) -> list[str]:
    return [e.template for e in decision.effects if isinstance(e, ex.SendEmail)]


def test_a_workflow_enrolls_waits_and_branches_on_a_segment() -> None:
    assert FOLLOW_UP.enroll.segment == "pricing-hunters"
    wait = FOLLOW_UP.steps[0]
    assert isinstance(wait, m.WaitForStep) and wait.segment == "pricing-hunters"
    assert wait.event == EventType.SEGMENT_ENTERED


def test_wait_for_a_segment_ends_at_once_for_a_member_and_the_branch_sees_it() -> None:
    decision = ex.advance(
        FOLLOW_UP, ex.EnrollmentState(), _inputs(NOW, frozenset({"pricing-hunters"}))
    )
    assert _sends(decision) == ["lead/offer"]


def test_wait_for_a_segment_ends_on_its_entry_event_or_times_out() -> None:
    waiting = ex.advance(FOLLOW_UP, ex.EnrollmentState(), _inputs(NOW))
    assert waiting.state.status == "waiting" and waiting.next_run_at == NOW + timedelta(days=5)

    other = EventView("s0", EventType.SEGMENT_ENTERED, NOW + timedelta(hours=1), {"segment": "x"})
    entered = EventView(
        "s1", EventType.SEGMENT_ENTERED, NOW + timedelta(hours=2), {"segment": "pricing-hunters"}
    )
    later = NOW + timedelta(hours=3)
    # entered, then left again before the enrollment looked: the wait still ended
    ended = ex.advance(FOLLOW_UP, waiting.state, _inputs(later, events=[other, entered]))
    assert ended.matched_event == "s1" and _sends(ended) == ["lead/nudge"]

    quiet = ex.advance(FOLLOW_UP, waiting.state, _inputs(later, events=[other]))
    assert quiet.state.status == "waiting" and not _sends(quiet)
    timed_out = ex.advance(FOLLOW_UP, waiting.state, _inputs(NOW + timedelta(days=5)))
    assert _sends(timed_out) == ["lead/nudge"]
