"""`nurture.testing`: test your own workflows on the simulation engine, with pytest.

Given some contacts and events, check which emails go out, when, and what
happens to each contact (stage changes, exits, the handoff to sales). It runs
the real engine of `nurture simulate` (the same enrollment, executor, scoring,
lifecycle, handoff and delivery code) under a virtual clock, so a month takes
a second and every run of a test gives the same answer::

    from nurture.testing import Simulate

    def test_a_new_lead_gets_the_guide_two_days_later(simulate: Simulate) -> None:
        result = simulate(
            contacts=[{"email": "anne@example.com", "stage": "lead"}],
            days=7,
        )
        assert result.templates_to("anne@example.com") == ["lead/welcome", "lead/guide"]

The pytest plugin (registered as ``nurture``; installed with the package) adds
two fixtures: ``nurture_project``, the project folder (``--nurture-project
DIR``, else the nearest folder holding a ``nurture.yaml`` above the test
file), and ``simulate``, `simulate_project` bound to that folder
(`nurture.testing.simulation`).

For tests that need the engine itself, step by step (a scheduler tick, a
worker's batch, an event through the API's path, the database after each),
`Harness` drives the real engine with an in-memory transport and a virtual
clock on a database you give it, and `write_project` writes a project folder
from a few strings (`nurture.testing.harness`). nurture's own tests are built
on both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nurture.definitions.loader import CONFIG_FILE
from nurture.testing.harness import START, Harness, write_project
from nurture.testing.simulation import (
    DEFAULT_START,
    Contacts,
    Email,
    Events,
    Handoff,
    ScoreChange,
    SegmentChange,
    SimResult,
    Simulate,
    Winner,
    simulate_project,
)

__all__ = [
    "DEFAULT_START",
    "START",
    "Email",
    "Handoff",
    "Harness",
    "ScoreChange",
    "SegmentChange",
    "SimResult",
    "Simulate",
    "Winner",
    "simulate_project",
    "write_project",
]


# --- the pytest plugin ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nurture", "nurture workflow tests")
    group.addoption(
        "--nurture-project",
        metavar="DIR",
        default=None,
        help="The nurture project the `simulate` fixture runs "
        "(default: the nearest folder above the test holding a nurture.yaml).",
    )


@pytest.fixture
def nurture_project(request: pytest.FixtureRequest) -> Path:
    """The folder of the nurture project under test."""
    option = request.config.getoption("--nurture-project")
    if option:
        return Path(option).resolve()
    start = Path(request.path).resolve().parent
    for folder in (start, *start.parents, request.config.rootpath):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise pytest.UsageError(f"no {CONFIG_FILE} above {start}: pass --nurture-project DIR")


@pytest.fixture
def simulate(nurture_project: Path) -> Simulate:
    """`simulate_project` for the project under test: ``simulate(contacts, events, days=…)``."""

    def run(contacts: Contacts, events: Events | None = None, **options: Any) -> SimResult:
        return simulate_project(nurture_project, contacts, events, **options)

    return run
