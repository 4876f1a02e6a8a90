"""Experiments on the real engine under a virtual clock (SQLite): a winner decided only
once its sample and wait are in and only when significant, then sent to everyone; a
holdout never emailed and compared in the report; the variant on every send record."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.store import db
from nurture.testing import DEFAULT_START, simulate_project, write_project
from nurture.testing.simulation import SimResult
from nurture.tools.explain import explain
from nurture.tools.reactions import Reaction
from nurture.tools.report_html import render_html
from nurture.tools.reports import build_report
from nurture.tools.simulate import Simulation

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
scoring:
  rules:
    - {event: email.clicked, points: 50}
  thresholds: {mql: 40, sql: 1000}
"""
#: The guide every 4 days: before a winner, each contact its own variant; after, the winner.
WORKFLOW = """\
name: lead-nurture
enroll: {{stage: lead}}
{holdout}
steps:
  - id: guide
    send:
      variants: {{a: lead/guide, b: lead/guide-short}}
      winner: {{metric: human_clicks, after: 3d, min_sample: {sample}}}
  - wait: 4d
  - goto: guide
"""
TEMPLATE = """\
---
subject: "{subject}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text><a href="https://example.com/guide">lire</a></mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
CONTACTS = [{"email": f"c{i}@example.com", "stage": "lead"} for i in range(200)]


def _project(root: Path, sample: int = 60, holdout: str = "") -> Path:
    return write_project(
        root,
        CONFIG,
        {"lead-nurture": WORKFLOW.format(sample=sample, holdout=holdout)},
        {
            "lead/guide": TEMPLATE.format(subject="Le guide"),
            "lead/guide-short": TEMPLATE.format(subject="Le guide, en bref"),
        },
    )


def _clicks(a: float, b: float) -> list[Reaction]:
    after = timedelta(hours=2)
    return [
        Reaction("lead/guide", "email.clicked", after, a),
        Reaction("lead/guide-short", "email.clicked", after, b),
    ]


def _run(project: Path, reactions: list[Reaction], days: float = 10) -> SimResult:
    return simulate_project(project, CONTACTS, days=days, reactions=reactions, seed=7)


def _rounds(result: SimResult) -> list[set[str]]:
    """The variants sent in each round of the guide (day 0, 4, 8)."""
    rounds: list[set[str]] = [set(), set(), set()]
    for record in result.records:
        if record.kind == "send":
            day = (record.at - result.start).days
            rounds[day // 4].add(str(record.details["variant"]))
    return rounds


def test_the_clearly_better_variant_wins_after_its_wait_and_goes_to_everyone(
    tmp_path: Path,
) -> None:
    result = _run(_project(tmp_path), _clicks(0.1, 0.5))
    (winner,) = result.winners()
    assert (winner.workflow, winner.step, winner.variant, winner.metric) == (
        "lead-nurture",
        "guide",
        "b",
        "human_clicks",
    )
    # Not before `after` (3 days since the first send): at the next look, day 4.
    assert winner.at - DEFAULT_START == timedelta(days=4)
    assert _rounds(result) == [{"a", "b"}, {"b"}, {"b"}]
    # Each contact kept its own variant until then, and the records say which.
    firsts = {result.emails(c["email"])[0].variant for c in CONTACTS}
    assert firsts == {"a", "b"}
    assert [e.variant for e in result.emails("c0@example.com")][1:] == ["b", "b"]
    assert result.variants("c0@example.com") == {"guide": "b"}
    line = next(r.as_json() for r in result.records if r.kind == "send")
    assert line["variant"] in {"a", "b"} and line["template"].startswith("lead/guide")
    decided = next(r.as_json() for r in result.records if r.kind == "winner")
    assert "contact" not in decided and decided["variant"] == "b"
    assert decided["variants"]["b"]["sends"] >= 60


def test_no_winner_without_significance_nor_before_min_sample(tmp_path: Path) -> None:
    even = _run(_project(tmp_path / "even"), _clicks(0.3, 0.3))
    assert even.winners() == []
    assert _rounds(even) == [{"a", "b"}] * 3  # the weights hold
    # ~100 sends a variant a round: ~300 after the third, not 350.
    small = _run(_project(tmp_path / "small", sample=350), _clicks(0.1, 0.5))
    assert small.winners() == []
    assert _rounds(small) == [{"a", "b"}] * 3


def test_a_held_out_contact_is_never_emailed_and_the_report_compares_it(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path / "project", holdout="holdout: 20%")
    database = tmp_path / "sim.sqlite3"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("email,stage\n" + "".join(f"{c['email']},lead\n" for c in CONTACTS))
    loaded = load_project(project)
    simulation = Simulation(
        loaded, start=DEFAULT_START, days=10, reactions=_clicks(0.3, 0.3), database=database
    )
    result = SimResult(simulation.run(contacts))

    held = {c["email"] for c in CONTACTS if result.held_out(c["email"])}
    assert 20 <= len(held) <= 60  # 20 % of 200, within sampling error
    for email in held:
        assert result.emails(email) == []
        assert {reason for _, reason in result.skips(email)} == {"holdout"}
    assert all(result.emails(c["email"]) for c in CONTACTS if c["email"] not in held)

    engine = db.create_engine_for(f"sqlite:///{database}")
    sessions = db.session_factory(engine)
    with sessions() as session:
        report = build_report(
            session, loaded, DEFAULT_START - timedelta(days=1), DEFAULT_START + timedelta(days=11)
        )
        told = explain(session, Engine(loaded, sessions), sorted(held)[0], DEFAULT_START)
    engine.dispose()
    (enrollment,) = told["enrollments"]
    assert enrollment["holdout"] is True and "holdout" in enrollment["next"]
    holdout, test = report["experiments"]
    assert holdout["kind"] == "holdout" and holdout["share"] == pytest.approx(0.2)
    treated, kept = holdout["groups"]
    assert (treated["arm"], kept["arm"]) == ("treated", "holdout")
    assert (kept["contacts"], treated["contacts"]) == (len(held), 200 - len(held))
    # Clicks score 50 (mql at 40): only emailed contacts can move up.
    assert kept["converted"] == 0 and treated["converted"] > 0
    assert holdout["lift"]["difference"] == pytest.approx(treated["rate"])
    assert holdout["lift"]["low"] > 0
    assert test["kind"] == "variants" and [v["variant"] for v in test["variants"]] == ["a", "b"]
    assert sum(v["sent"] for v in test["variants"]) == 3 * (200 - len(held))
    assert test["variants"][1]["difference"] is not None
    json.dumps(report)  # JSON-ready
    page = render_html(report)
    assert "Holdout lead-nurture (20%)" in page and "A/B test lead-nurture/guide" in page


SPLIT = """\
name: paths
enroll: {stage: lead}
steps:
  - id: path-test
    split: [{weight: 50, goto: short}, {weight: 50, goto: long}]
  - id: short
    exit: short
  - id: long
    score: {points: 50}
"""


def test_a_split_sends_each_contact_down_its_own_arm_and_the_report_compares_them(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path / "project", CONFIG, {"paths": SPLIT})
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("email,stage\n" + "".join(f"{c['email']},lead\n" for c in CONTACTS))
    loaded = load_project(project)
    runs = []
    for n in range(2):
        database = tmp_path / f"sim{n}.sqlite3"
        simulation = Simulation(loaded, start=DEFAULT_START, days=1, database=database)
        runs.append((SimResult(simulation.run(contacts)), database))
    (first, database), (again, _) = runs
    arms = {c["email"]: first.arms(c["email"])["path-test"] for c in CONTACTS}
    assert arms == {c["email"]: again.arms(c["email"])["path-test"] for c in CONTACTS}
    long = sum(arm == "long" for arm in arms.values())
    assert 70 <= long <= 130  # half of 200, within sampling error
    for email, arm in arms.items():
        assert first.stages_of(email)[-1] == ("mql" if arm == "long" else "lead")

    engine = db.create_engine_for(f"sqlite:///{database}")
    with db.session_factory(engine)() as session:
        report = build_report(
            session, loaded, DEFAULT_START - timedelta(days=1), DEFAULT_START + timedelta(days=2)
        )
    engine.dispose()
    (split,) = report["experiments"]
    assert (split["kind"], split["step"]) == ("split", "path-test")
    short, longer = split["arms"]
    assert (short["arm"], short["contacts"], short["converted"]) == ("short", 200 - long, 0)
    assert (longer["arm"], longer["contacts"], longer["converted"]) == ("long", long, long)
    assert longer["difference"]["difference"] == pytest.approx(1.0)
    assert "Split paths/path-test" in render_html(report)
