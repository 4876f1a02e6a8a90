"""Parser and cross-file checks: every problem, with its file and line."""

from __future__ import annotations

import re
import shutil
from datetime import time, timedelta
from pathlib import Path

import pytest

from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.loader import load_project, read_project
from nurture.definitions.workflow import parse_workflow
from nurture.errors import DefinitionError

FIXTURES = Path(__file__).parent / "fixtures" / "invalid"
REPO = Path(__file__).parents[2]
BASE_CONFIG, _ = parse_config((FIXTURES / "base-config.yaml").read_text(), "nurture.yaml")


def _expected(path: Path) -> list[str]:
    return sorted(
        f"{path.name}:{match.group(1)}: {match.group(2)}"
        for match in re.finditer(r"^# expect: (\d+): (.*)$", path.read_text(), re.M)
    )


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "workflows").glob("*.yaml")), ids=lambda p: p.stem
)
def test_invalid_workflow_reports_every_problem_with_its_line(path: Path) -> None:
    workflow, problems = parse_workflow(path.read_text(), path.name, BASE_CONFIG)
    assert workflow is None
    assert sorted(str(p) for p in problems) == _expected(path)


@pytest.mark.parametrize("path", sorted((FIXTURES / "config").glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_config_reports_every_problem_with_its_line(path: Path) -> None:
    config, problems = parse_config(path.read_text(), path.name)
    assert config is None
    assert sorted(str(p) for p in problems) == _expected(path)


def test_the_example_project_is_valid_and_complete() -> None:
    project = load_project(REPO)
    config = project.config
    assert config.stages[:4] == ("subscriber", "lead", "mql", "sql")
    assert dict(config.scoring.thresholds) == {"lead": 25, "mql": 70, "sql": 100}
    for stage in ("subscriber", "lead", "mql"):
        assert project.workflows_for_stage(stage), f"no workflow enrolls {stage}"
    kinds = {step.kind for w in project.workflows.values() for step in w.steps}
    assert {"send", "wait", "wait_for", "branch", "exit"} <= kinds


def test_a_valid_workflow_parses_into_the_model() -> None:
    text = """
name: lead-nurture
enroll: {stage: lead}
reenroll: {after: 90d}
exit: {when: "contact.stage_index >= stage_index('mql')"}
steps:
  - send: lead/welcome
  - wait: 1d12h
  - id: guide
    send: lead/guide
  - wait_for: {event: email.clicked, match: "event.step == 'guide'", timeout: 5d}
    on_event: good
  - wait: {until: "monday 09:30"}
  - score: {points: -5, reason: no click}
  - exit
  - id: good
    set: {industry: retail, tags: {add: [clicked]}}
"""
    workflow, problems = parse_workflow(text, "w.yaml", BASE_CONFIG)
    assert problems == []
    assert workflow is not None
    assert workflow.step_ids == (
        "welcome",
        "wait-2",
        "guide",
        "wait-for-4",
        "wait-5",
        "score-6",
        "exit-7",
        "good",
    )
    assert workflow.reenroll == m.Reenroll(mode="after", after=timedelta(days=90))
    wait = workflow.steps[1]
    assert isinstance(wait, m.WaitStep) and wait.duration == timedelta(hours=36)
    until = workflow.steps[4]
    assert isinstance(until, m.WaitStep)
    assert (until.until_weekday, until.until_time) == (0, time(9, 30))
    wait_for = workflow.steps[3]
    assert isinstance(wait_for, m.WaitForStep)
    assert wait_for.match is not None and wait_for.match.test({"event": {"step": "guide"}})
    assert wait_for.on_event == "good" and wait_for.on_timeout is None
    good = workflow.step("good")
    assert isinstance(good, m.SetStep) and good.add_tags == ("clicked",)
    assert good.line == 16


def test_cross_file_problems_are_all_listed(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "base-config.yaml", tmp_path / "nurture.yaml")
    with (tmp_path / "nurture.yaml").open("a") as f:
        f.write(
            "handoff:\n  at: sql\n  on_reject: {workflow: recycle}\n  notify:\n    - email: owner\n"
        )
    (tmp_path / "workflows").mkdir()
    (tmp_path / "templates" / "lead").mkdir(parents=True)
    (tmp_path / "templates" / "lead" / "welcome.mjml").write_text("---\nsubject: x\n---\n")
    (tmp_path / "templates" / "_layouts").mkdir()
    (tmp_path / "templates" / "_layouts" / "guide.mjml").write_text("partials are not emails")
    for name in ("a", "b"):
        (tmp_path / "workflows" / f"{name}.yaml").write_text(
            "name: same\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
            "  - send: lead/guide\n"
        )
    project, problems = read_project(tmp_path)
    assert project is None
    assert sorted(map(str, problems)) == sorted(
        [
            "nurture.yaml:13: handoff.on_reject.workflow: no workflow named 'recycle'",
            "nurture.yaml:15: template 'sales/handoff' not found (expected templates/sales/handoff.mjml)",
            "workflows/a.yaml:5: template 'lead/guide' not found (expected templates/lead/guide.mjml)",
            "workflows/b.yaml:1: workflow name 'same' is already used by workflows/a.yaml",
            "workflows/b.yaml:5: template 'lead/guide' not found (expected templates/lead/guide.mjml)",
        ]
    )
    with pytest.raises(DefinitionError) as raised:
        load_project(tmp_path)
    assert len(raised.value.problems) == 5


def test_a_directory_without_nurture_yaml_is_not_a_project(tmp_path: Path) -> None:
    _, problems = read_project(tmp_path)
    assert [str(p) for p in problems] == [
        f"nurture.yaml: not a nurture project: {tmp_path / 'nurture.yaml'} not found "
        "(a project needs nurture.yaml, workflows/ and templates/; see the README)"
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "name: x\nsteps:\n  - send: a\n   wait: 2d\n",
            4,
            "this line is not indented like the rest of the list that starts at line 3",
        ),
        ("name: x\nsteps:\n  - send: a\n  -wait: 2d\n", 4, "a list item needs a space after"),
        ("name: x\ndescription: Bonjour: le guide\n", 2, "a ': ' inside a value: put the value"),
        ("name: x\nsteps:\n\t- send: a\n", 3, "a tab: YAML indents with spaces only"),
        ("name: x\nsteps:\n  - send: a\n  wait\n  x: 1\n", 4, "add the ':' after the key"),
        ("name: 'x\nsteps: []\n", 1, "a quote opened on this line is never closed"),
        ("subject: 'L'offre'\n", 1, "double it ('L''offre')"),
        ("stages: [a, b\nprospect_stage: b\n", 1, "the [ opened on this line is not closed"),
        ("from: @x\n", 1, "a value cannot start with '@': put it in quotes"),
        ("a: 1\n---\nb: 2\n", 2, "a second document ('---')"),
    ],
)
def test_yaml_syntax_errors_say_what_to_fix_where(text: str, line: int, message: str) -> None:
    """PyYAML's "expected <block end>, but found '?'" means nothing to a marketer."""
    from nurture.definitions.reader import load_yaml

    _, [problem] = load_yaml(text, "nurture.yaml")
    assert (problem.line, problem.message.startswith("invalid YAML: ")) == (line, True)
    assert message in problem.message
    assert "<block" not in problem.message and "token" not in problem.message


def test_problems_with_and_without_a_line_in_one_file_sort_file_wide_first() -> None:
    from nurture.errors import DefinitionError, Problem

    error = DefinitionError([Problem("a.yaml", 3, "late"), Problem("a.yaml", None, "whole file")])
    assert [p.message for p in error.problems] == ["whole file", "late"]
