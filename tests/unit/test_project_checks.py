"""One project read as a whole: a mistake is reported where it is, and only there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nurture.definitions.loader import read_project

REPO = Path(__file__).parents[2]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example project (the repository's own nurture.yaml, workflows, templates)."""
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copy(REPO / "nurture.yaml", root)
    shutil.copytree(REPO / "workflows", root / "workflows")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


def _line(text: str, fragment: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if fragment in line)


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (
            "frequency_cap:",
            "frequncy_cap:",
            "unknown key 'frequncy_cap' in sending (did you mean 'frequency_cap'?)",
        ),
        (
            "default_timezone: Europe/Paris",
            "default_timezone: Europe/Pariss",
            "sending.default_timezone: unknown timezone 'Europe/Pariss' "
            "(an IANA name such as Europe/Paris)",
        ),
        (
            'hours: "09:00-18:00"',
            'hours: "9h-18h"',
            "sending.window.hours: expected 'HH:MM-HH:MM', got '9h-18h'",
        ),
        (
            "    mql: 70",
            "    mql: 170",
            "scoring.thresholds: 'sql' (100) must be above 'mql' (170), "
            "since it comes later in the ladder",
        ),
    ],
    ids=["misspelt-key", "timezone", "hours", "thresholds"],
)
def test_one_mistake_in_nurture_yaml_is_the_only_problem_reported(
    example: Path, before: str, after: str, message: str
) -> None:
    config = example / "nurture.yaml"
    text = config.read_text().replace(before, after, 1)
    config.write_text(text)
    line = _line(text, "sql: 100") if "thresholds" in message else _line(text, after)

    project, problems = read_project(example)

    assert project is None
    assert [str(p) for p in problems] == [f"nurture.yaml:{line}: {message}"]


def test_a_property_with_an_unknown_type_still_counts_as_declared(example: Path) -> None:
    config = example / "nurture.yaml"
    text = config.read_text().replace("budget_confirmed: boolean", "budget_confirmed: bool", 1)
    config.write_text(text)

    _, problems = read_project(example)

    assert [str(p) for p in problems] == [
        f"nurture.yaml:{_line(text, 'budget_confirmed: bool')}: properties.budget_confirmed: "
        "unknown type 'bool' (did you mean 'boolean'?) (types: string, number, boolean, date, "
        "list)"
    ]


def test_a_nurture_yaml_that_is_not_yaml_is_the_only_problem_reported(example: Path) -> None:
    """Nothing parsed: the workflows' names go unchecked rather than all reported undeclared."""
    config = example / "nurture.yaml"
    text = config.read_text().replace("scoring:\n", "scoring: oops\n", 1)
    config.write_text(text)

    _, problems = read_project(example)

    assert [p.file for p in problems] == ["nurture.yaml"]
    assert problems[0].message.startswith("invalid YAML: ")


def test_validate_with_unparsed_stages_reports_them_without_crashing(example: Path) -> None:
    """Templates are still checked (with what parsed), so the sample contact needs no stage."""
    from typer.testing import CliRunner

    from nurture.cli.app import app

    config = example / "nurture.yaml"
    text = config.read_text().replace(
        "stages: [subscriber, lead, mql, sql, opportunity, customer]", "stages: oops", 1
    )
    config.write_text(text)

    result = CliRunner().invoke(app, ["validate", str(example)])

    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"nurture.yaml:{_line(text, 'stages: oops')}: stages: expected a non-empty list of "
        "stage names"
    ]
