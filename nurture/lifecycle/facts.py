"""The facts flow 2 passes around: a stage move, an event nurture emits about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nurture.store.models import Contact


@dataclass(frozen=True)
class StageMove:
    """A contact moved from one stage to another, and why (`score`, `import`, `api`…)."""

    contact_id: int
    from_stage: str | None
    to_stage: str
    cause: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemEvent:
    """An event nurture emits itself (stage.changed, handoff.*), waiting to be recorded."""

    contact: Contact
    event_id: str
    kind: str
    properties: Mapping[str, Any]
