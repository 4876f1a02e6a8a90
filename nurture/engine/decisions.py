"""What a decision carries out: the effects of the steps an advance ran.

The executor (`executor.py`) returns them as values; `effects.py` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nurture.definitions import model as m


@dataclass(frozen=True)
class SendEmail:
    """An effect of a `send` step: one email, claimed in the send ledger by step and visit.

    `variant` names the variant sent when the step is an A/B test.
    """

    step: str
    visit: int
    template: str
    variant: str | None = None


@dataclass(frozen=True)
class Assign:
    """An effect of a split or a holdout: the group this enrollment is in, kept for reports.

    `experiment` is the split's step id, or `assignment.HOLDOUT`; `stage` is the contact's
    stage at that moment (the report counts who moved up from it).
    """

    experiment: str
    arm: str
    stage: str | None


@dataclass(frozen=True)
class SetFields:
    """An effect of a `set` step: fields, properties and tags the engine writes on the contact."""

    step: str
    visit: int
    properties: Mapping[str, Any]
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddScore:
    """An effect of a `score` step: points the engine adds to the score ledger, once per visit."""

    step: str
    visit: int
    points: float
    reason: str | None = None


@dataclass(frozen=True)
class SendNotification:
    """An effect of a `notify` step: a message the engine queues once per step and visit."""

    step: str
    visit: int
    notify: m.Notify


Effect = SendEmail | SetFields | AddScore | SendNotification | Assign
