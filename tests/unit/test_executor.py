"""The pure executor: concrete journeys, and properties over generated workflows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.workflow import parse_workflow
from nurture.delivery.policy import Deferral
from nurture.engine import executor as ex
from nurture.events import EventView

CONFIG, _ = parse_config(
    "stages: [subscriber, lead, mql, sql]\nprospect_stage: sql\nproperties: {industry: string}\n",
    "nurture.yaml",
)
assert CONFIG is not None
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday


def workflow(text: str) -> m.Workflow:
    parsed, problems = parse_workflow(text, "w.yaml", CONFIG)
    assert not problems, problems
    assert parsed is not None
    return parsed


def contact(**fields: Any) -> ContactView:
    base = {"id": 1, "email": "anne@example.com", "stage": "lead", "stage_index": 1, "score": 0.0}
    return ContactView({**base, **fields}, {}, declared=["industry"])


def inputs(now: datetime, who: ContactView | None = None, **extra: Any) -> ex.Inputs:
    return ex.Inputs(
        contact=who or contact(),
        now=now,
        stages=CONFIG.stages,
        prospect_stage=CONFIG.prospect_stage,
        **extra,
    )


def sends(decision: ex.Decision) -> list[str]:
    return [e.template for e in decision.effects if isinstance(e, ex.SendEmail)]


LEAD = workflow(
    """
name: lead
enroll: {stage: lead}
exit: {when: "contact.stage_index >= stage_index('mql')"}
steps:
  - send: lead/welcome
  - wait: 2d
  - id: guide
    send: lead/guide
  - wait_for: {event: email.clicked, match: "event.step == 'guide'", timeout: 5d}
    on_event: case-study
  - send: lead/reminder
  - exit: no-engagement
  - id: case-study
    branch:
      - when: "contact.score >= 40"
        goto: meeting
  - send: lead/case-study
  - exit
  - id: meeting
    send: lead/meeting
"""
)


def test_a_journey_sends_waits_and_times_out() -> None:
    first = ex.advance(LEAD, ex.EnrollmentState(), inputs(START))
    assert sends(first) == ["lead/welcome"]
    assert first.state.status == "waiting" and first.next_run_at == START + timedelta(days=2)

    early = ex.advance(LEAD, first.state, inputs(START + timedelta(days=1)))
    assert early.effects == () and early.next_run_at == START + timedelta(days=2)

    second = ex.advance(LEAD, first.state, inputs(START + timedelta(days=2)))
    assert sends(second) == ["lead/guide"]
    assert second.state.step == "wait-for-4"
    assert second.next_run_at == START + timedelta(days=7)

    timeout = ex.advance(LEAD, second.state, inputs(START + timedelta(days=7)))
    assert sends(timeout) == ["lead/reminder"]
    assert timeout.state.status == "completed" and timeout.state.exit_reason == "no-engagement"
    assert timeout.next_run_at is None


def test_a_matching_click_takes_the_on_event_branch() -> None:
    waiting = ex.advance(
        LEAD,
        ex.advance(LEAD, ex.EnrollmentState(), inputs(START)).state,
        inputs(START + timedelta(days=2)),
    ).state
    other = EventView("e1", "email.clicked", START + timedelta(days=3), {"step": "welcome"})
    click = EventView("e2", "email.clicked", START + timedelta(days=4), {"step": "guide"})
    now = START + timedelta(days=4, hours=1)

    decision = ex.advance(LEAD, waiting, inputs(now, contact(score=50), events=[other, click]))

    assert decision.matched_event == "e2"
    assert sends(decision) == ["lead/meeting"]
    assert decision.state.status == "completed"


def test_an_event_before_the_wait_began_does_not_count() -> None:
    waiting = ex.advance(
        LEAD,
        ex.advance(LEAD, ex.EnrollmentState(), inputs(START)).state,
        inputs(START + timedelta(days=2)),
    ).state
    stale = EventView("e0", "email.clicked", START + timedelta(days=1), {"step": "guide"})
    decision = ex.advance(LEAD, waiting, inputs(START + timedelta(days=3), events=[stale]))
    assert decision.effects == () and decision.state.step == "wait-for-4"


@pytest.mark.parametrize(
    ("who", "extra", "reason"),
    [
        (contact(stage="sql", stage_index=3), {}, "prospect"),
        (contact(stage="mql", stage_index=2), {}, "exit-condition"),
        (contact(), {"suppressed": "unsubscribed"}, "unsubscribed"),
    ],
)
def test_exits_are_honoured_even_mid_wait(
    who: ContactView, extra: dict[str, Any], reason: str
) -> None:
    waiting = ex.advance(LEAD, ex.EnrollmentState(), inputs(START)).state
    decision = ex.advance(LEAD, waiting, inputs(START + timedelta(hours=1), who, **extra))
    assert decision.state.status == "exited" and decision.state.exit_reason == reason
    assert sends(decision) == [] and decision.next_run_at is None


def test_set_and_score_are_seen_by_a_later_branch_in_the_same_advance() -> None:
    flow = workflow(
        """
name: w
enroll: {stage: lead}
steps:
  - set: {industry: retail, tags: {add: [vip]}}
  - score: 45
  - branch:
      - when: "contact.industry == 'retail' and contact.score >= 40 and 'vip' in contact.tags"
        goto: yes
  - exit: no
  - id: yes
    send: lead/yes
"""
    )
    decision = ex.advance(flow, ex.EnrollmentState(), inputs(START))
    assert sends(decision) == ["lead/yes"]
    kinds = [type(e).__name__ for e in decision.effects]
    assert kinds == ["SetFields", "AddScore", "SendEmail"]


def test_a_closed_send_gate_defers_the_send_without_losing_it() -> None:
    opens = START + timedelta(hours=1)

    def gate(now: datetime, _sent: int) -> Deferral | None:
        return Deferral(opens, "window") if now < opens else None

    flow = workflow("name: w\nenroll: {stage: lead}\nsteps:\n  - send: a/b\n")
    deferred = ex.advance(flow, ex.EnrollmentState(), inputs(START, send_gate=gate))
    assert sends(deferred) == [] and deferred.next_run_at == opens
    sent = ex.advance(flow, deferred.state, inputs(opens, send_gate=gate))
    assert sends(sent) == ["a/b"] and sent.state.status == "completed"


@pytest.mark.parametrize(
    ("until", "timezone", "now", "expected"),
    [
        # 08:00 UTC = 09:00 Paris on a Monday: "10:00" is later the same day
        ("10:00", "Europe/Paris", START, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        # already past 10:00 Paris: tomorrow
        (
            "10:00",
            "Europe/Paris",
            START + timedelta(hours=3),
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        ),
        # "tuesday 10:00" on Monday → tomorrow
        ("tuesday 10:00", "Europe/Paris", START, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        # "monday" on a Monday → next Monday
        ("monday", "UTC", START, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        # across the spring DST change in Paris (29 March 2026): 10:00 is UTC+2
        (
            "10:00",
            "Europe/Paris",
            datetime(2026, 3, 28, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_wait_until_a_local_time(
    until: str, timezone: str, now: datetime, expected: datetime
) -> None:
    flow = workflow(f'name: w\nenroll: {{stage: lead}}\nsteps:\n  - wait: {{until: "{until}"}}\n')
    step = flow.steps[0]
    assert isinstance(step, m.WaitStep)
    assert ex.wait_until(step, now, timezone) == expected


# --- properties over generated workflows ------------------------------------------

KINDS = ("send", "wait", "wait_for", "branch", "goto", "set", "score", "exit")


@st.composite
def workflows(draw: st.DrawFn) -> m.Workflow:
    count = draw(st.integers(1, 8))
    ids = [f"s{i}" for i in range(count)]
    lines = [
        "name: generated",
        "enroll: {stage: lead}",
        "exit: {when: \"contact.industry == 'stop'\"}",
        "steps:",
    ]
    for i in range(count):
        kind = draw(st.sampled_from(KINDS))
        target = draw(st.sampled_from(ids))
        lines.append(f"  - id: {ids[i]}")
        if kind == "send":
            lines.append(f"    send: t/{ids[i]}")
        elif kind == "wait":
            lines.append(f"    wait: {draw(st.sampled_from(['30s', '2h', '1d']))}")
        elif kind == "wait_for":
            lines.append("    wait_for: {event: email.clicked, timeout: 1d}")
            if draw(st.booleans()):
                lines.append(f"    on_event: {target}")
            if draw(st.booleans()):
                lines.append(f"    on_timeout: {draw(st.sampled_from(ids))}")
        elif kind == "branch":
            lines.append(f"    branch: [{{when: 'contact.score > 10', goto: {target}}}]")
        elif kind == "goto":
            lines.append(f"    goto: {target}")
        elif kind == "set":
            lines.append("    set: {industry: x}")
        elif kind == "score":
            lines.append(f"    score: {draw(st.integers(-5, 20))}")
        else:
            lines.append("    exit")
    parsed, problems = parse_workflow("\n".join(lines) + "\n", "g.yaml", CONFIG)
    assume(parsed is not None and not problems)
    assert parsed is not None
    return parsed


clicks = st.lists(st.integers(0, 5 * 24 * 60), max_size=6)  # minutes after start


def run_to_end(
    flow: m.Workflow,
    click_minutes: list[int],
    who: ContactView | None = None,
    max_rounds: int = 200,
) -> tuple[list[ex.Decision], list[datetime]]:
    events = [
        EventView(f"e{i}", "email.clicked", START + timedelta(minutes=n), {})
        for i, n in enumerate(sorted(click_minutes))
    ]
    state, now = ex.EnrollmentState(), START
    decisions, moments = [], []
    for _ in range(max_rounds):
        decision = ex.advance(
            flow, state, inputs(now, who, events=[e for e in events if e.at <= now])
        )
        decisions.append(decision)
        moments.append(now)
        state = decision.state
        if state.ended:
            break
        assert decision.next_run_at is not None, "a live enrollment must say when to wake it"
        assert decision.next_run_at > now, "a live enrollment must wait for a later moment"
        wake = [e.at for e in events if now < e.at < decision.next_run_at]
        now = min([decision.next_run_at, *wake])
    return decisions, moments


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(workflows(), clicks)
def test_an_enrollment_never_gets_stuck_nor_runs_past_the_end(
    flow: m.Workflow, click_minutes: list[int]
) -> None:
    decisions, _ = run_to_end(flow, click_minutes, max_rounds=400)
    for decision in decisions:
        state = decision.state
        if state.ended:
            assert decision.next_run_at is None
            assert state.exit_reason
        else:
            assert state.step in flow.step_ids
    keys = [(e.step, e.visit) for d in decisions for e in d.effects if isinstance(e, ex.SendEmail)]
    assert len(keys) == len(set(keys)), "a claim key was produced twice"
    templates = {s.template for s in flow.steps if isinstance(s, m.SendStep)}
    assert {
        e.template for d in decisions for e in d.effects if isinstance(e, ex.SendEmail)
    } <= templates


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(workflows(), st.sampled_from(["prospect", "exit-condition", "unsubscribed"]))
def test_exits_always_win_and_nothing_is_sent_after_them(flow: m.Workflow, why: str) -> None:
    first = ex.advance(flow, ex.EnrollmentState(), inputs(START))
    if first.state.ended:
        return
    who = {
        "prospect": contact(stage="sql", stage_index=3),
        "exit-condition": contact(),
        "unsubscribed": contact(),
    }[why]
    if why == "exit-condition":
        who = ContactView({**who._fields}, {"industry": "stop"}, declared=["industry"])
    extra = {"suppressed": "unsubscribed"} if why == "unsubscribed" else {}
    later = ex.advance(flow, first.state, inputs(first.next_run_at or START, who, **extra))
    assert later.state.status == "exited"
    assert later.state.exit_reason == why
    assert sends(later) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(workflows(), clicks)
def test_decisions_are_pure(flow: m.Workflow, click_minutes: list[int]) -> None:
    first, _ = run_to_end(flow, click_minutes)
    second, _ = run_to_end(flow, click_minutes)
    assert first == second
