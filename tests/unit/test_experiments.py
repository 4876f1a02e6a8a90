"""Experiments without a database: how they are written (and refused, at file:line), who
draws what (the same every time, in the weights' proportions), the statistics that
decide a winner, and what the pure executor does with variants, splits and holdouts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.loader import read_project
from nurture.definitions.schema import workflow_schema
from nurture.definitions.workflow import parse_workflow
from nurture.engine import assignment
from nurture.engine import executor as ex
from nurture.engine.stats import compare, judge
from nurture.testing import write_project
from nurture.tools.graph import nodes_and_edges

CONFIG, _ = parse_config("stages: [subscriber, lead, mql, sql]\nprospect_stage: sql\n", "n.yaml")
assert CONFIG is not None
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

AB = """\
name: lead
enroll: {stage: lead}
holdout: 10%
steps:
  - id: guide
    send:
      variants: {a: lead/guide, b: lead/guide-short}
      weights: {a: 70, b: 30}
      winner: {metric: reached_stage, stage: mql, within: 14d, after: 3d, min_sample: 200}
  - id: paths
    split: [{weight: 50, goto: short}, {weight: 50, goto: long}]
  - id: short
    exit: short
  - id: long
    send: lead/long
"""


def parse(text: str) -> tuple[m.Workflow | None, list[str]]:
    workflow, problems = parse_workflow(text, "w.yaml", CONFIG)
    return workflow, [str(p) for p in problems]


def test_variants_weights_winner_split_and_holdout_parse() -> None:
    workflow, problems = parse(AB)
    assert problems == []
    assert workflow is not None
    assert workflow.holdout == pytest.approx(0.1)
    guide = workflow.step("guide")
    assert isinstance(guide, m.SendStep)
    assert [(v.name, v.template, v.weight) for v in guide.variants] == [
        ("a", "lead/guide", 70.0),
        ("b", "lead/guide-short", 30.0),
    ]
    assert guide.winner == m.Winner(
        "w.yaml", 9, "reached_stage", timedelta(days=3), 200, "mql", timedelta(days=14)
    )
    split = workflow.step("paths")
    assert isinstance(split, m.SplitStep)
    assert [(a.goto, a.weight) for a in split.arms] == [("short", 50.0), ("long", 50.0)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("weights: {a: 70, b: 30}", "weights: {a: 70, c: 30}"),
            "w.yaml:8: steps[0].send.weights: 'c' is not one of the variants (a, b)",
        ),
        (
            ("weights: {a: 70, b: 30}", "weights: {a: 70, b: 0}"),
            "w.yaml:8: steps[0].send.weights.b: expected a number > 0, got 0",
        ),
        (
            ("weights: {a: 70, b: 30}", "weights: {a: 70}"),
            "w.yaml:8: steps[0].send.weights: no weight for b",
        ),
        (
            ("metric: reached_stage, stage: mql, within: 14d,", "metric: clicks,"),
            "w.yaml:9: steps[0].send.winner.metric: unknown metric 'clicks'",
        ),
        (
            ("stage: mql, within: 14d,", ""),
            "w.yaml:9: steps[0].send.winner: the reached_stage metric needs 'stage'",
        ),
        (
            ("stage: mql,", "stage: mlq,"),
            "w.yaml:9: steps[0].send.winner.stage: unknown stage 'mlq' (did you mean 'mql'?)",
        ),
        (
            ("{a: lead/guide, b: lead/guide-short}", "{a: lead/guide}"),
            "w.yaml:7: steps[0].send.variants: an A/B test needs at least two variants",
        ),
        (
            ("goto: long}]", "goto: lng}]"),
            "w.yaml:11: step 'paths': goto target 'lng' does not exist (did you mean 'long'?)",
        ),
        (
            ("{weight: 50, goto: long}", "{weight: -5, goto: long}"),
            "w.yaml:11: steps[1].split[1].weight: expected a number > 0, got -5",
        ),
        (("holdout: 10%", "holdout: 0.1"), "w.yaml:3: holdout: expected a percentage"),
        (("holdout: 10%", "holdout: 100%"), "w.yaml:3: holdout: expected a percentage"),
    ],
)
def test_a_mistake_in_an_experiment_is_refused_at_its_line(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in AB
    workflow, problems = parse(AB.replace(old, new))
    assert workflow is None
    assert any(p.startswith(message) for p in problems), problems


def test_the_editors_schema_knows_experiments() -> None:
    jsonschema.validate(yaml.safe_load(AB), workflow_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(AB.replace("10%", "0.1")), workflow_schema())


def test_validate_finds_a_missing_variant_template_at_its_line(tmp_path: Path) -> None:
    template = "---\nsubject: Hi\n---\n<mjml><mj-body></mj-body></mjml>\n"
    root = write_project(
        tmp_path,
        "stages: [subscriber, lead, mql, sql]\nprospect_stage: sql\n",
        {"lead": AB},
        {"lead/guide": template, "lead/long": template},
    )
    project, problems = read_project(root)
    assert project is None
    assert [str(p) for p in problems] == [
        "workflows/lead.yaml:7: template 'lead/guide-short' not found "
        "(expected templates/lead/guide-short.mjml) (did you mean 'lead/guide'?)"
    ]


# --- who draws what ------------------------------------------------------------------


def test_a_contact_always_draws_the_same_variant_and_the_weights_hold() -> None:
    workflow, _ = parse(AB)
    assert workflow is not None
    guide = workflow.step("guide")
    assert isinstance(guide, m.SendStep)
    drawn = [assignment.variant_for(guide, "lead", str(i), {}).name for i in range(10_000)]
    again = [assignment.variant_for(guide, "lead", str(i), {}).name for i in range(10_000)]
    assert drawn == again
    shares = Counter(drawn)
    assert shares["a"] / 10_000 == pytest.approx(0.7, abs=0.02)  # ±4.4 sd of a 10k sample
    held = sum(assignment.held_out(workflow, str(i)) for i in range(10_000))
    assert held / 10_000 == pytest.approx(0.1, abs=0.015)
    # Another experiment draws independently: the holdout is 10 % of each variant too.
    in_a = [i for i in range(10_000) if drawn[i] == "a"]
    held_a = sum(assignment.held_out(workflow, str(i)) for i in in_a)
    assert held_a / len(in_a) == pytest.approx(0.1, abs=0.02)


def test_a_decided_winner_is_sent_to_everyone() -> None:
    workflow, _ = parse(AB)
    assert workflow is not None
    guide = workflow.step("guide")
    assert isinstance(guide, m.SendStep)
    test = assignment.test_of(guide)
    winners = {("lead", "guide", test): "b"}
    assert {assignment.variant_for(guide, "lead", str(i), winners).name for i in range(500)} == {
        "b"
    }
    # A decision naming a variant the step no longer has: the weights hold.
    stale = {("lead", "guide", test): "c"}
    assert {assignment.variant_for(guide, "lead", str(i), stale).name for i in range(500)} == {
        "a",
        "b",
    }
    # A new challenger (another template for b) is a new test: the old winner does not hold.
    challenger = AB.replace("b: lead/guide-short", "b: lead/guide-new")
    changed, _ = parse(challenger)
    assert changed is not None
    new = changed.step("guide")
    assert isinstance(new, m.SendStep) and assignment.test_of(new) != test
    assert {assignment.variant_for(new, "lead", str(i), winners).name for i in range(500)} == {
        "a",
        "b",
    }


# --- statistics ---------------------------------------------------------------------------


def test_a_winner_needs_significance_and_lower_is_better_for_unsubscribes() -> None:
    clear = {"a": (20, 200), "b": (60, 200)}  # 10 % against 30 %
    assert judge(clear, lower_is_better=False).winner == "b"
    assert judge(clear, lower_is_better=True).winner == "a"
    close = {"a": (20, 200), "b": (27, 200)}  # 10 % against 13.5 %: p ≈ 0.27
    verdict = judge(close, lower_is_better=False)
    assert (verdict.leader, verdict.winner) == ("b", None)
    assert judge({"a": (0, 200), "b": (0, 200)}, lower_is_better=False).winner is None
    # Three variants: the leader must beat both at 0.025 (Bonferroni).
    three = {"a": (20, 200), "b": (37, 200), "c": (10, 200)}  # b vs a: p ≈ 0.015
    assert judge(three, lower_is_better=False).winner == "b"
    nearly = {"a": (20, 200), "b": (35, 200), "c": (10, 200)}  # b vs a: p ≈ 0.029 > 0.025
    assert judge({"a": (20, 200), "b": (35, 200)}, lower_is_better=False).winner == "b"
    assert judge(nearly, lower_is_better=False).winner is None


def test_a_difference_comes_with_its_95_percent_interval() -> None:
    found = compare(30, 100, 20, 100)
    assert found is not None
    assert found.difference == pytest.approx(0.10)
    # Wald: 1.96 × sqrt(.3×.7/100 + .2×.8/100) = 0.1192
    assert (found.low, found.high) == pytest.approx((0.10 - 0.1192, 0.10 + 0.1192), abs=1e-3)
    assert found.p_value == pytest.approx(0.1025, abs=1e-3)
    assert compare(1, 0, 1, 10) is None


# --- the executor ---------------------------------------------------------------------------


def _contact(contact_id: int) -> ContactView:
    return ContactView({"id": contact_id, "email": f"c{contact_id}@example.com", "stage": "lead"})


def _advance(workflow: m.Workflow, contact_id: int, **extra: object) -> ex.Decision:
    inputs = ex.Inputs(
        contact=_contact(contact_id),
        now=START,
        stages=CONFIG.stages,
        prospect_stage=CONFIG.prospect_stage,
        **extra,  # type: ignore[arg-type]
    )
    return ex.advance(workflow, ex.EnrollmentState(), inputs)


def test_the_executor_sends_the_drawn_variant_and_follows_the_drawn_arm() -> None:
    workflow, _ = parse(AB.replace("holdout: 10%\n", ""))
    assert workflow is not None
    outcomes = set()
    for contact_id in range(1, 60):
        decision = _advance(workflow, contact_id)
        email = next(e for e in decision.effects if isinstance(e, ex.SendEmail))
        guide = workflow.step("guide")
        assert isinstance(guide, m.SendStep)
        expected = assignment.variant_for(guide, "lead", str(contact_id), {})
        assert (email.variant, email.template) == (expected.name, expected.template)
        (assign,) = [e for e in decision.effects if isinstance(e, ex.Assign)]
        assert assign.experiment == "paths" and assign.stage == "lead"
        if assign.arm == "short":
            assert decision.state.exit_reason == "short"
        else:
            assert [e.template for e in decision.effects if isinstance(e, ex.SendEmail)][1:] == [
                "lead/long"
            ]
        outcomes.add((email.variant, assign.arm))
    assert outcomes == {("a", "short"), ("a", "long"), ("b", "short"), ("b", "long")}
    guide = workflow.step("guide")
    assert isinstance(guide, m.SendStep)
    decided = _advance(workflow, 1, winners={("lead", "guide", assignment.test_of(guide)): "b"})
    assert next(e.variant for e in decided.effects if isinstance(e, ex.SendEmail)) == "b"


def test_a_held_out_contact_goes_through_the_workflow_without_an_email() -> None:
    workflow, _ = parse(AB)
    assert workflow is not None
    held = next(i for i in range(1, 500) if assignment.held_out(workflow, str(i)))
    treated = next(i for i in range(1, 500) if not assignment.held_out(workflow, str(i)))

    decision = _advance(workflow, held)
    assert [e for e in decision.effects if isinstance(e, ex.SendEmail)] == []
    assert ex.Assign("@holdout", "holdout", "lead") in decision.effects
    assert [t.detail["reason"] for t in decision.trace if t.kind == "withheld"]
    assert decision.state.ended  # it still went down the steps

    decision = _advance(workflow, treated)
    assert ex.Assign("@holdout", "treated", "lead") in decision.effects
    assert [e for e in decision.effects if isinstance(e, ex.SendEmail)]


def test_the_graph_shows_the_variants_and_the_arms_with_their_shares() -> None:
    workflow, _ = parse(AB)
    assert workflow is not None
    nodes, edges = nodes_and_edges(workflow)
    labels = {n.key: (n.label, n.shape) for n in nodes}
    assert labels["guide"] == ("✉ A/B a: lead/guide · b: lead/guide-short", "rect")
    assert labels["paths"] == ("⑂ split", "diamond")
    assert [(e.target, e.label) for e in edges if e.source == "paths"] == [
        ("short", "50%"),
        ("long", "50%"),
    ]
