"""Each step kind of a workflow file → its `model` step, with a `file:line`
problem for whatever is wrong in it. `workflow.py` calls the builder for the
step's kind (`STEP_BUILDERS`), then checks the step graph as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from typing import Any

from nurture.definitions import model as m
from nurture.definitions.base import (
    BRANCH_CASE_KEYS,
    CLOCK_PATTERN,
    NAME_PATTERN,
    SCORE_KEYS,
    SETTABLE_FIELDS,
    TAG_KEYS,
    WAIT_FOR_KEYS,
    WAIT_KEYS,
    Context,
    ExpressionScope,
    did_you_mean,
    event_type,
    items_of,
    misplaced_in_body,
    parse_duration,
)
from nurture.definitions.config import parse_notify
from nurture.definitions.experiments import TEMPLATE_PATTERN, parse_split, parse_variants
from nurture.definitions.reader import LineDict, LineList
from nurture.definitions.tracking import parse_count
from nurture.events import EventType

StepBuilder = Callable[
    [Context, Any, LineDict | None, dict[str, Any], str, ExpressionScope, m.ProjectConfig | None],
    m.Step | None,
]


def _send(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    if isinstance(body, LineDict):  # an A/B test: {variants: …, weights: …, winner: …}
        return parse_variants(ctx, body, base, path, config.stages if config else ())
    if not isinstance(body, str) or not TEMPLATE_PATTERN.match(body):
        ctx.error(
            base["line"],
            f"{path}.send: expected a template name like 'lead/welcome' "
            f"(templates/lead/welcome.mjml) or variants, got {body!r}",
            f"{path}.send",
        )
        return None
    return m.SendStep(**base, template=body)


def _wait(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    if isinstance(body, LineDict):
        ctx.keys(
            body,
            WAIT_KEYS,
            f"{path}.wait",
            required=("until",),
            elsewhere=misplaced_in_body("wait"),
        )
        until = body.get("until")
        parsed = _until(str(until)) if until is not None else None
        if parsed is None:
            if until is not None:
                ctx.error(
                    body.line_of("until"),
                    f"{path}.wait.until: expected a time ('09:00'), a "
                    f"weekday ('monday') or both ('monday 09:00'), got {until!r}",
                    f"{path}.wait.until",
                )
            return None
        weekday, at = parsed
        return m.WaitStep(**base, until_weekday=weekday, until_time=at)
    duration = parse_duration(body)
    if duration is None:
        ctx.error(
            base["line"],
            f"{path}.wait: invalid duration {body!r} (use a number and a unit: "
            "30s, 15m, 36h, 2d, 1w; or {until: '09:00'})",
            f"{path}.wait",
        )
        return None
    return m.WaitStep(**base, duration=duration)


def _until(text: str) -> tuple[int | None, time | None] | None:
    weekday: int | None = None
    at: time | None = None
    for part in text.strip().lower().split():
        if part in m.WEEKDAY_NAMES and weekday is None:
            weekday = m.WEEKDAY_NAMES[part]
        elif (match := CLOCK_PATTERN.match(part)) and at is None:
            at = time(int(match.group(1)), int(match.group(2)))
        else:
            return None
    if weekday is None and at is None:
        return None
    return weekday, at


def _wait_for(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    assert data is not None
    spec = ctx.mapping(body, base["line"], f"{path}.wait_for")
    if spec is None:
        return None
    where = f"{path}.wait_for"
    ctx.keys(
        spec, WAIT_FOR_KEYS, where, required=("timeout",), elsewhere=misplaced_in_body("wait_for")
    )
    on_event = ctx.string(data, "on_event", path)
    on_timeout = ctx.string(data, "on_timeout", path)
    timeout = ctx.duration(spec, "timeout", where)
    if "segment" in spec:
        return _wait_for_segment(ctx, spec, base, where, scope, timeout, on_event, on_timeout)
    if "event" not in spec:
        ctx.error(spec.line, f"{where}: expected 'event' or 'segment' (what ends the wait)", where)
    event = event_type(ctx, spec, "event", where) if "event" in spec else None
    match = (
        scope.compile(ctx, spec["match"], spec.line_of("match"), f"{where}.match", with_event=True)
        if "match" in spec
        else None
    )
    count = parse_count(ctx, spec, where)
    if event is None or timeout is None:
        return None
    return m.WaitForStep(
        **base,
        event=event,
        timeout=timeout,
        match=match,
        on_event=on_event,
        on_timeout=on_timeout,
        count=count,
    )


def _wait_for_segment(
    ctx: Context,
    spec: LineDict,
    base: dict[str, Any],
    where: str,
    scope: ExpressionScope,
    timeout: timedelta | None,
    on_event: str | None,
    on_timeout: str | None,
) -> m.Step | None:
    """`wait_for: {segment: NAME, timeout: 5d}`: until the contact is in the segment
    (at once if it already is), recorded as waiting for its ``segment.entered``."""
    for key in ("event", "match", "count"):
        if key in spec:
            ctx.error(
                spec.line_of(key),
                f"{where}.{key}: a wait for a segment takes no '{key}' "
                "(the segment's definition says what counts)",
                f"{where}.{key}",
            )
    segment = ctx.string(spec, "segment", where)
    if segment is not None and not scope.check_segment(
        ctx, segment, spec.line_of("segment"), f"{where}.segment"
    ):
        segment = None
    if segment is None or timeout is None:
        return None
    return m.WaitForStep(
        **base,
        event=EventType.SEGMENT_ENTERED,
        timeout=timeout,
        on_event=on_event,
        on_timeout=on_timeout,
        segment=segment,
    )


def _branch(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    items = items_of(ctx, body, base["line"], f"{path}.branch")
    if not items:
        if isinstance(body, LineList):
            ctx.error(base["line"], f"{path}.branch: expected at least one case", f"{path}.branch")
        return None
    cases = []
    for n, (i, case) in enumerate(items):
        case_path = f"{path}.branch[{i}]"
        ctx.keys(case, BRANCH_CASE_KEYS, case_path, required=("goto",))
        goto = ctx.string(case, "goto", case_path)
        when = (
            scope.compile(
                ctx,
                case["when"],
                case.line_of("when"),
                f"{case_path}.when",
                with_event=False,
                with_segments=True,
            )
            if "when" in case
            else None
        )
        if when is None and "when" not in case and n != len(items) - 1:
            ctx.error(
                case.line,
                f"{case_path}: only the last case may omit 'when' (it is the 'otherwise' case)",
                case_path,
            )
        if goto:
            cases.append(m.BranchCase(ctx.file, case.line, goto=goto, when=when))
    if len(cases) != len(items):
        return None
    return m.BranchStep(**base, cases=tuple(cases))


def _goto(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    if not isinstance(body, str):
        ctx.error(base["line"], f"{path}.goto: expected a step id, got {body!r}", f"{path}.goto")
        return None
    return m.GotoStep(**base, target=body)


def _set(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    spec = ctx.mapping(body, base["line"], f"{path}.set")
    if spec is None:
        return None
    settable = (*SETTABLE_FIELDS, *(config.properties if config else ()), "tags")
    properties: dict[str, Any] = {}
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    for key, value in spec.items():
        if key == "tags":
            tags = ctx.mapping(value, spec.line_of(key), f"{path}.set.tags")
            if tags is not None:
                ctx.keys(tags, TAG_KEYS, f"{path}.set.tags")
                add = ctx.strings(tags, "add", f"{path}.set.tags") or ()
                remove = ctx.strings(tags, "remove", f"{path}.set.tags") or ()
        elif key not in settable and config is not None:  # no config: names unknown
            ctx.error(
                spec.line_of(key),
                f"{path}.set: cannot set '{key}'{did_you_mean(key, settable)}"
                "; declare custom properties under 'properties:' in nurture.yaml",
                f"{path}.set.{key}",
            )
        else:
            properties[key] = value
    if not spec:
        ctx.error(base["line"], f"{path}.set: nothing to set", f"{path}.set")
    return m.SetStep(**base, properties=properties, add_tags=add, remove_tags=remove)


def _score(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    if isinstance(body, int | float) and not isinstance(body, bool):
        return m.ScoreStep(**base, points=float(body))
    spec = ctx.mapping(body, base["line"], f"{path}.score")
    if spec is None:
        return None
    ctx.keys(
        spec,
        SCORE_KEYS,
        f"{path}.score",
        required=("points",),
        elsewhere=misplaced_in_body("score"),
    )
    points = ctx.number(spec, "points", f"{path}.score")
    reason = ctx.string(spec, "reason", f"{path}.score")
    if points is None:
        return None
    return m.ScoreStep(**base, points=points, reason=reason)


def _notify_step(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    spec = ctx.mapping(body, base["line"], f"{path}.notify")
    if spec is None:
        return None
    notify = parse_notify(ctx, spec, f"{path}.notify")
    if notify is None:
        return None
    if notify.kind == "email" and notify.template is None:
        ctx.error(
            spec.line,
            f"{path}.notify: an email notification needs a 'template'",
            f"{path}.notify.template",
        )
    return m.NotifyStep(**base, notify=notify)


def _exit(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    if body is None:
        return m.ExitStep(**base)
    if not isinstance(body, str) or not NAME_PATTERN.match(body):
        ctx.error(
            base["line"],
            f"{path}.exit: expected a reason like 'completed' (lowercase "
            f"letters, digits, - and _), got {body!r}",
            f"{path}.exit",
        )
        return None
    return m.ExitStep(**base, reason=body)


STEP_BUILDERS: dict[str, StepBuilder] = {
    "send": _send,
    "wait": _wait,
    "wait_for": _wait_for,
    "branch": _branch,
    "split": parse_split,
    "goto": _goto,
    "set": _set,
    "score": _score,
    "notify": _notify_step,
    "exit": _exit,
}
