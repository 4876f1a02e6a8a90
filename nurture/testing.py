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
file), and ``simulate``, `simulate_project` bound to that folder.

Contacts are a list of dicts (one per contact, the columns of an import), CSV
text, or the path of a CSV / JSON Lines file. Events are a list of dicts (SPEC
§5; ``at`` may be relative to the start: ``"+2d"``, ``"+36h"``; ``id`` is
optional; ``contact`` may be just an email, or use ``email``; any other key is
an event property, e.g. ``"url"``), or the path of a JSON Lines file.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import nurture.clock as clock
from nurture.definitions.loader import CONFIG_FILE, load_project
from nurture.events import EventType
from nurture.records import Record
from nurture.tools.simulate import Reaction, Simulation, SimulationResult, load_reactions

__all__ = [
    "DEFAULT_START",
    "Email",
    "Handoff",
    "SimResult",
    "Simulate",
    "simulate_project",
]

#: A Monday, 08:00 UTC (09:00 in Paris): send windows never surprise a test.
DEFAULT_START = datetime.fromisoformat("2026-01-05T08:00:00+00:00")

Contacts = Sequence[Mapping[str, Any]] | str | Path
Events = Sequence[Mapping[str, Any]] | str | Path
#: The type of the `simulate` fixture, for annotating test functions.
Simulate = Callable[..., "SimResult"]
_EVENT_KEYS = frozenset({"id", "type", "at", "contact", "properties"})


@dataclass(frozen=True)
class Email:
    """One email the engine sent to a contact."""

    template: str
    subject: str
    at: datetime
    workflow: str | None
    step: str | None


@dataclass(frozen=True)
class Handoff:
    """A contact handed to sales."""

    contact: str
    owner: str | None
    at: datetime


@dataclass
class SimResult:
    """What happened in a simulation, with helpers to ask it about one contact."""

    simulation: SimulationResult

    @property
    def records(self) -> list[Record]:
        """Every record of the timeline, in time order (see `nurture simulate --json`)."""
        return self.simulation.records

    @property
    def start(self) -> datetime:
        return self.simulation.start

    def timeline(self, email: str) -> list[Record]:
        """Every record about one contact."""
        return [r for r in self.records if r.contact == email]

    def emails(self, email: str) -> list[Email]:
        """The emails sent to a contact, in order."""
        return [
            Email(
                str(r.details.get("template")),
                str(r.details.get("subject", "")),
                r.at,
                r.workflow,
                r.step,
            )
            for r in self.timeline(email)
            if r.kind == "send"
        ]

    def emails_to(self, email: str) -> list[tuple[str, datetime]]:
        """(template, when) of every email sent to a contact, in order."""
        return [(e.template, e.at) for e in self.emails(email)]

    def templates_to(self, email: str) -> list[str]:
        """The templates sent to a contact, in order."""
        return [e.template for e in self.emails(email)]

    def subjects_to(self, email: str) -> list[str]:
        """The subject lines (as rendered for that contact) sent to a contact, in order."""
        return [e.subject for e in self.emails(email)]

    def stages_of(self, email: str) -> list[str]:
        """The stages a contact moved to during the run, in order."""
        return [str(r.details.get("to")) for r in self.timeline(email) if r.kind == "stage"]

    def exits(self, email: str) -> list[tuple[str | None, str]]:
        """(workflow, reason) of every workflow a contact left, in order."""
        return [
            (r.workflow, str(r.details.get("reason")))
            for r in self.timeline(email)
            if r.kind == "exit"
        ]

    def skips(self, email: str) -> list[tuple[str | None, str]]:
        """(step, reason) of every email held back (window, cap, suppressed…)."""
        return [
            (r.step, str(r.details.get("reason"))) for r in self.timeline(email) if r.kind == "skip"
        ]

    def handoffs(self) -> list[Handoff]:
        """Every contact handed to sales, with the owner assigned."""
        return [
            Handoff(r.contact, r.details.get("owner"), r.at)
            for r in self.records
            if r.kind == "handoff"
            and r.details.get("event", EventType.HANDOFF_CREATED) == EventType.HANDOFF_CREATED
        ]

    def rejected(self) -> list[Record]:
        """Events the engine refused (a typo in a test's event shows up here)."""
        return [r for r in self.records if r.kind == "reject"]


def simulate_project(
    project_dir: Path | str,
    contacts: Contacts,
    events: Events | None = None,
    *,
    days: float = 30,
    start: datetime | str | None = None,
    seed: int = 0,
    reactions: Sequence[Reaction] | Path | str = (),
) -> SimResult:
    """Run the project's workflows on these contacts and events under a virtual clock."""
    project = load_project(Path(project_dir))
    moment = DEFAULT_START if start is None else start
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if isinstance(reactions, str | Path):
        reactions = load_reactions(Path(reactions))
    simulation = Simulation(
        project, start=clock.as_utc(moment), days=days, seed=seed, reactions=reactions
    )
    with tempfile.TemporaryDirectory(prefix="nurture-testing-") as folder:
        scratch = Path(folder)
        contacts_file = _contacts_file(contacts, scratch)
        events_file = None if events is None else _events_file(events, scratch)
        return SimResult(simulation.run(contacts_file, events_file))


def _contacts_file(contacts: Contacts, scratch: Path) -> Path:
    if isinstance(contacts, Path):
        return contacts
    if isinstance(contacts, str):
        if "\n" not in contacts:
            return Path(contacts)
        path = scratch / "contacts.csv"
        path.write_text(contacts.strip() + "\n", encoding="utf-8")
        return path
    columns: list[str] = ["email"]
    for row in contacts:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in contacts:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    path = scratch / "contacts.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _events_file(events: Events, scratch: Path) -> Path:
    if isinstance(events, str | Path):
        return Path(events)
    lines = []
    for number, item in enumerate(events, 1):
        event: dict[str, Any] = {k: v for k, v in item.items() if k in _EVENT_KEYS}
        event.setdefault("id", f"test-{number}")
        event.setdefault("at", "+0s")
        if isinstance(event["at"], datetime):
            event["at"] = event["at"].isoformat()
        if "email" in item:
            event["contact"] = {"email": item["email"]}
        elif isinstance(event.get("contact"), str):
            event["contact"] = {"email": event["contact"]}
        extra = {k: v for k, v in item.items() if k not in _EVENT_KEYS and k != "email"}
        if extra:
            event["properties"] = {**dict(item.get("properties") or {}), **extra}
        lines.append(json.dumps(event, ensure_ascii=False, default=str))
    path = scratch / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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
