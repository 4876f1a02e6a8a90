"""Workflows run on the simulation engine: `simulate_project` and what it returns.

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

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.events import EventType
from nurture.records import Record
from nurture.tools.reactions import MachineTraffic, Reaction, load_reactions
from nurture.tools.simulate import Simulation, SimulationResult

__all__ = [
    "DEFAULT_START",
    "Email",
    "Handoff",
    "ScoreChange",
    "SegmentChange",
    "SimResult",
    "Simulate",
    "Winner",
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
    #: The variant sent, when the step is an A/B test (`send: {variants: …}`).
    variant: str | None = None


@dataclass(frozen=True)
class Winner:
    """A variant test decided during the run: from `at` on, everyone gets `variant`."""

    workflow: str | None
    step: str | None
    variant: str
    metric: str
    at: datetime


@dataclass(frozen=True)
class Handoff:
    """A contact handed to sales."""

    contact: str
    owner: str | None
    at: datetime


@dataclass(frozen=True)
class ScoreChange:
    """One row of a contact's score ledger: the points, the score after, and why.

    `cause` is the ledger's kind: engagement (an event, `event`, earned them by
    `rule`), decay, fit, manual (a workflow's score step: `rule` is
    ``workflow/step``) or revoked (a click found to be a machine's).
    """

    at: datetime
    points: float
    score: float
    rule: str
    cause: str
    event: str | None = None


@dataclass(frozen=True)
class SegmentChange:
    """A contact entering (`entered` True) or leaving a segment, and why (the judgement
    in words: whether `when` held, how many events were counted)."""

    at: datetime
    segment: str
    entered: bool
    why: str


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
                r.details.get("variant"),
            )
            for r in self.timeline(email)
            if r.kind == "send"
        ]

    def variants(self, email: str) -> dict[str, str]:
        """Step id → the variant a contact was sent, for the A/B tests it went through."""
        return {e.step or "": e.variant for e in self.emails(email) if e.variant is not None}

    def held_out(self, email: str) -> list[str]:
        """The workflows that kept this contact in their holdout (it got none of their emails)."""
        return [r.workflow or "" for r in self.timeline(email) if r.kind == "holdout"]

    def arms(self, email: str) -> dict[str, str]:
        """Split step id → the step this contact's arm went to."""
        return {
            r.step or "": str(r.details["arm"]) for r in self.timeline(email) if r.kind == "split"
        }

    def winners(self) -> list[Winner]:
        """The variant tests decided during the run, in order."""
        return [
            Winner(r.workflow, r.step, str(r.details["variant"]), str(r.details["metric"]), r.at)
            for r in self.records
            if r.kind == "winner"
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

    def scores(self, email: str) -> list[ScoreChange]:
        """Every change of a contact's score during the run (ledger rows), in order."""
        return [
            ScoreChange(
                r.at,
                float(r.details["points"]),
                float(r.details["score"]),
                str(r.details["rule"]),
                str(r.details["cause"]),
                r.details.get("event"),
            )
            for r in self.timeline(email)
            if r.kind == "score"
        ]

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

    def segments_of(self, email: str) -> list[SegmentChange]:
        """Every segment entry and exit of a contact during the run, in order."""
        return [
            SegmentChange(
                r.at,
                str(r.details.get("entered") or r.details.get("left")),
                "entered" in r.details,
                str(r.details.get("why", "")),
            )
            for r in self.timeline(email)
            if r.kind == "segment"
        ]

    def in_segment(self, email: str, segment: str) -> bool:
        """Whether the contact is in the segment at the end of the run."""
        changes = [c for c in self.segments_of(email) if c.segment == segment]
        return bool(changes) and changes[-1].entered

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
    reactions: Sequence[Reaction | MachineTraffic] | Path | str = (),
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
