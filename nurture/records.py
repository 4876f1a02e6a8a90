"""What the engine did, as a stream of records: simulate's timeline, the worker's log.

Records carry the contact's id and, for simulate only, its email: the worker
logs ids, never addresses (no personal data in logs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: enroll, send, skip, defer, event, score, stage, exit, handoff, notify, fail
Kind = str


@dataclass(frozen=True)
class Record:
    """One thing the engine did to a contact, as a `Recorder` receives it.

    `simulate` prints them as its timeline (`as_json` for `--json`); `nurture.testing` reads them.
    """

    at: datetime
    kind: Kind
    contact_id: int
    contact: str = ""
    workflow: str | None = None
    step: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `simulate --json` line: SPEC §7's shape."""
        line: dict[str, Any] = {"at": self.at.isoformat()}
        if self.contact or self.contact_id:  # a winner decided is about no one contact
            line["contact"] = self.contact or self.contact_id
        line["kind"] = self.kind
        if self.workflow is not None:
            line["workflow"] = self.workflow
        if self.step is not None:
            line["step"] = self.step
        line.update(self.details)
        return line


Recorder = Callable[[Record], None]


def discard(_record: Record) -> None:
    """The default recorder: production code keeps no timeline in memory."""
