"""The lifecycle ladder: where a contact stands and what that forbids.

Small on purpose for now; stage changes from scoring thresholds, stage history
and temperature arrive with the engagement loop.
"""

from __future__ import annotations

from collections.abc import Sequence


def at_or_beyond(stage: str | None, target: str, stages: Sequence[str]) -> bool:
    """True when `stage` is `target` or later on the ladder (unknown stages are not)."""
    if stage is None or stage not in stages or target not in stages:
        return False
    return stages.index(stage) >= stages.index(target)


def suppression_reason(
    suppressed: bool, suppression_reason: str | None, consent_status: str | None
) -> str | None:
    """Why a contact must get no email at all, or None: suppression, or consent withdrawn."""
    if suppressed:
        return f"suppressed:{suppression_reason or 'manual'}"
    if consent_status == "withdrawn":
        return "unsubscribed"
    return None
