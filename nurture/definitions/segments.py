"""nurture.yaml's `segments:` → `Segment`s: named groups of contacts, by profile and behaviour.

```yaml
segments:
  pricing-hunters:
    when: "contact.stage == 'lead'"
    events: {type: page.visited, match: "'/pricing' in event.url", count: ">= 3", within: 7d}
```

Apart from `config.py` because a segment has its own small grammar (the
count's comparison, the window), each part checked with a `file:line: message`.
A segment with a problem is still returned, so a workflow naming it is not
also told that it does not exist.
"""

from __future__ import annotations

import re
from typing import Any

from nurture.definitions import model as m
from nurture.definitions.base import (
    NAME_PATTERN,
    SEGMENT_EVENTS_KEYS,
    SEGMENT_KEYS,
    Context,
    ExpressionScope,
    event_type,
    join_path,
)
from nurture.definitions.reader import LineDict
from nurture.events import COUNTS, SEGMENT_EVENT_TYPES

_COUNT = re.compile(r"^\s*(>=|<=|==|>|<)?\s*(\d+)\s*$")


def parse_segments(
    ctx: Context, value: Any, line: int | None, scope: ExpressionScope
) -> dict[str, m.Segment]:
    if value is None:
        return {}
    data = ctx.mapping(value, line, "segments")
    if data is None:
        return {}
    found: dict[str, m.Segment] = {}
    for name in data:
        path = f"segments.{name}"
        at = data.line_of(name)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            ctx.error(
                at, f"{path}: invalid segment name {name!r} (lowercase letters, digits, - and _)"
            )
            continue
        spec = ctx.mapping(data[name], at, path)
        if spec is None:
            found[name] = m.Segment(ctx.file, at, name=name)
            continue
        ctx.keys(spec, SEGMENT_KEYS, path)
        if "when" not in spec and "events" not in spec:
            ctx.error(
                spec.line,
                f"{path}: a segment needs 'when' (the contact's fields), "
                "'events' (what the contact did), or both",
                path,
            )
        when = (
            scope.compile(ctx, spec["when"], spec.line_of("when"), f"{path}.when", with_event=False)
            if "when" in spec
            else None
        )
        events = (
            _events(ctx, spec["events"], spec.line_of("events"), f"{path}.events", scope)
            if "events" in spec
            else None
        )
        found[name] = m.Segment(ctx.file, at, name=name, when=when, events=events)
    return found


def _events(
    ctx: Context, value: Any, line: int | None, path: str, scope: ExpressionScope
) -> m.SegmentEvents | None:
    spec = ctx.mapping(value, line, path)
    if spec is None:
        return None
    ctx.keys(spec, SEGMENT_EVENTS_KEYS, path, required=("type",))
    kind = event_type(ctx, spec, "type", path) if "type" in spec else None
    if kind in SEGMENT_EVENT_TYPES:
        ctx.error(
            spec.line_of("type"),
            f"{path}.type: a segment cannot count {kind} events (segments would "
            "enter and leave each other)",
            f"{path}.type",
        )
        kind = None
    match = (
        scope.compile(ctx, spec["match"], spec.line_of("match"), f"{path}.match", with_event=True)
        if "match" in spec
        else None
    )
    comparison, number = _count(ctx, spec, path)
    within = ctx.duration(spec, "within", path)
    traffic = _traffic(ctx, spec, path)
    if kind is None or number is None:
        return None
    return m.SegmentEvents(
        ctx.file,
        spec.line,
        type=kind,
        comparison=comparison,
        number=number,
        match=match,
        within=within,
        traffic=traffic,
    )


def _count(ctx: Context, spec: LineDict, path: str) -> tuple[str, int | None]:
    """`count: ">= 3"` (also `> 2`, `== 0`, `<= 1`, `< 2`, or a bare number, meaning
    at least that many); at least one event when left out."""
    value = spec.get("count")
    if value is None:
        return ">=", 1
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    found = _COUNT.match(text) if isinstance(text, str) else None
    if found is None:
        ctx.error(
            spec.line_of("count"),
            f"{join_path(path, 'count')}: expected a comparison and a whole number such as "
            f'">= 3", "< 2" or "== 0", got {value!r}',
            join_path(path, "count"),
        )
        return ">=", None
    return found.group(1) or ">=", int(found.group(2))


def _traffic(ctx: Context, spec: LineDict, path: str) -> str:
    """`traffic: all` counts machines' opens and clicks too; people's only by default."""
    value = spec.get("traffic")
    if value is None:
        return "human"
    if value not in COUNTS:
        ctx.error(
            spec.line_of("traffic"),
            f"{join_path(path, 'traffic')}: expected one of {', '.join(COUNTS)}, not {value!r} "
            "(human: people's opens and clicks only; all: machines' too)",
            join_path(path, "traffic"),
        )
        return "human"
    return str(value)
