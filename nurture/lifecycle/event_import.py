"""Events from a JSON Lines file: streamed, line by line, every bad line named.

What `nurture events import` runs. The file is read a line at a time (memory
stays flat whatever its size) and each line stands alone: one that is not
UTF-8, not JSON, or not an event the database can hold is refused as
``file:line: reason`` while every good line around it goes in, in batches of
`batch_size` through the one ingest entry (`Ingestor.ingest`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.errors import Problem
from nurture.lifecycle.incoming import IncomingEvent, InvalidEvent, parse_event
from nurture.lifecycle.ingest import Ingestor

DEFAULT_BATCH_SIZE = 500


@dataclass
class EventImportReport:
    """What an events import did: counts, and every refused line with its reason."""

    file: str
    recorded: int = 0
    duplicate: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.recorded + self.duplicate + self.rejected


def lines_of(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each line, read as it comes (a BOM on the first is dropped)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            yield number, line


def import_events(
    ingestor: Ingestor,
    sessions: sessionmaker[Session],
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> EventImportReport:
    """Import the events of `path`; see the module docstring. `on_progress(bytes read)`
    after each batch."""
    label = str(path)
    report = EventImportReport(label)
    source = f"import:{path.name}"
    batch: list[tuple[int, IncomingEvent]] = []
    done = 0

    def refuse(number: int, reason: str) -> None:
        report.rejected += 1
        report.problems.append(Problem(label, number, reason))

    def flush() -> None:
        outcomes = ingestor.ingest(sessions, [e for _, e in batch], source)
        for (number, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.status == "rejected":
                refuse(number, outcome.reason or "refused")
            elif outcome.status == "duplicate":
                report.duplicate += 1
            else:
                report.recorded += 1
        batch.clear()
        if on_progress is not None:
            on_progress(done)

    for number, raw in lines_of(path):
        done += len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            refuse(number, f"not UTF-8 text (byte {exc.start + 1} of the line); save as UTF-8")
            continue
        if not text.strip():
            continue
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            refuse(number, f"not JSON ({reason})")
            continue
        except RecursionError:
            refuse(number, "not JSON (nested too deeply)")
            continue
        try:
            batch.append((number, parse_event(data, now=clock.now())))
        except InvalidEvent as exc:
            refuse(number, str(exc))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")
