"""A segment's definition against one contact, as a pure function: in or out, and until when.

`judge` reads the contact (for `when`) and its events of the segment's type
(for `events:`), and says whether the contact is in the segment now, which
events made it so, and the next moment the answer may change with nothing
else happening: when a counted event leaves the `within` window. The upkeep
(`nurture.lifecycle.segments`) stores that moment and looks again then,
instead of re-judging every contact on every tick; `explain` calls the same
function to say why a contact is in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nurture.definitions import model as m
from nurture.events import EventView
from nurture.expressions import Expression, ExpressionError


@dataclass(frozen=True)
class Verdict:
    """Whether a contact is in a segment, why, and when that may change by time alone."""

    member: bool
    #: `when` held (True when the segment has none).
    profile: bool
    #: The events `events:` counted, oldest first (none when the segment has no `events:`).
    counted: tuple[EventView, ...] = ()
    #: When the oldest event that matters leaves the window and the answer flips.
    recheck_at: datetime | None = None

    def reason(self, segment: m.Segment) -> str:
        """Why, in words: ``contact.stage == 'lead'; 3 page.visited within 7d (>= 3)``."""
        parts = []
        if segment.when is not None:
            holds = "holds" if self.profile else "does not hold"
            parts.append(f"{segment.when.source} {holds}")
        spec = segment.events
        if spec is not None:
            within = f" within {_duration(spec.within)}" if spec.within else ""
            parts.append(f"{len(self.counted)} {spec.type}{within} (needs {spec.count_text})")
        return "; ".join(parts)


def judge(
    segment: m.Segment,
    context: Mapping[str, Any],
    events: Sequence[EventView],
    now: datetime,
) -> Verdict:
    """`context` is the expression context of the contact (`contact`, `now`, `stage_index`);
    `events` its events of the segment's type, oldest first (others are ignored)."""
    profile = segment.when is None or _holds(segment.when, context)
    spec = segment.events
    if spec is None:
        return Verdict(profile, profile)
    counted = tuple(counted_events(spec, context, events, now))
    behaviour = spec.holds(len(counted))
    recheck = _flips_at(spec, counted) if profile else None
    return Verdict(profile and behaviour, profile, counted, recheck)


def counted_events(
    spec: m.SegmentEvents,
    context: Mapping[str, Any],
    events: Sequence[EventView],
    now: datetime,
) -> list[EventView]:
    """The events `spec` counts at `now`: its type, a person's (unless `traffic: all`),
    inside the window, and matching."""
    start = now - spec.within if spec.within is not None else None
    found = []
    for event in events:
        if event.type != spec.type or not event.counts(spec.traffic):
            continue
        if start is not None and event.at <= start:
            continue
        if spec.match is not None and not _holds(spec.match, {**context, "event": event}):
            continue
        found.append(event)
    return found


def _flips_at(spec: m.SegmentEvents, counted: Sequence[EventView]) -> datetime | None:
    """The first moment an expiring event changes whether the count holds."""
    if spec.within is None:
        return None
    total = len(counted)
    now_holds = spec.holds(total)
    for expired, event in enumerate(sorted(counted, key=lambda e: e.at), 1):
        if spec.holds(total - expired) != now_holds:
            return event.at + spec.within
    return None


def _holds(expression: Expression, context: Mapping[str, Any]) -> bool:
    """A condition that fails to evaluate counts as false, as everywhere in the engine."""
    try:
        return expression.test(context)
    except ExpressionError:
        return False


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
