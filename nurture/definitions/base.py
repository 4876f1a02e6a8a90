"""What every definition parser shares: located problems, key vocabularies, values.

The parsers never stop at the first problem: each is recorded with its file,
line and key path and parsing carries on with what it can, so `nurture
validate` shows a marketer the whole list in one run. The key vocabularies here
are the single source for the published JSON Schema (see `schema.py`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from nurture.definitions import model as m
from nurture.definitions.fields import STANDARD_FIELDS
from nurture.definitions.reader import LineDict, LineList
from nurture.errors import Problem
from nurture.events import (
    EVENT_TYPES,
    SEGMENT_EVENT_TYPES,
    SYSTEM_EVENT_TYPES,
    is_known_event_type,
)
from nurture.expressions import (
    EXPRESSION_NAMES,
    SEGMENT_FUNCTION,
    Expression,
    ExpressionSyntaxError,
    compile_expression,
)

T = TypeVar("T")

# --- vocabularies (also drive schema.py) -------------------------------------

CONFIG_KEYS = (
    "stages",
    "prospect_stage",
    "properties",
    "scoring",
    "handoff",
    "sending",
    "webhooks",
    "tracking",
    "segments",
)
SCORING_KEYS = ("rules", "fit", "decay", "thresholds")
RULE_KEYS = ("event", "when", "points", "max_per_day", "max_total", "count")
TRACKING_KEYS = (
    "machine_within",
    "burst_within",
    "repeat_within",
    "sites",
    "visitor_window",
)
FIT_KEYS = ("when", "points")
DECAY_KEYS = ("half_life",)
HANDOFF_KEYS = ("at", "assign", "notify", "sla", "on_accept", "on_reject")
ASSIGN_KEYS = ("round_robin", "rules")
ASSIGN_RULE_KEYS = ("when", "owner")
NOTIFY_KEYS = ("webhook", "email", "template")
SLA_KEYS = ("accept_within", "escalate_after", "escalate_to")
ON_ACCEPT_KEYS = ("stage",)
WEBHOOK_KEYS = ("url", "events")
#: What an outbound webhook may subscribe to (segment changes are not posted).
WEBHOOK_TOPICS: tuple[str, ...] = tuple(
    t.value for t in SYSTEM_EVENT_TYPES if t not in SEGMENT_EVENT_TYPES
)
ON_REJECT_KEYS = ("stage", "score", "workflow")
ON_REJECT_SCORES = ("keep", "halve", "reset")
SENDING_KEYS = (
    "from",
    "reply_to",
    "window",
    "default_timezone",
    "frequency_cap",
    "require_consent",
    "soft_bounce_limit",
    "unsubscribe_mailto",
    "rate",
    "connections",
    "warmup",
    "return_path",
)
RATE_KEYS = ("per_second", "per_minute", "per_hour", "per_day")
WARMUP_KEYS = ("since", "daily")
WINDOW_KEYS = ("days", "hours")
CAP_KEYS = ("max", "per")
WORKFLOW_KEYS = ("name", "description", "enroll", "reenroll", "exit", "holdout", "steps")
ENROLL_KEYS = ("stage", "event", "when", "match", "segment")
SEGMENT_KEYS = ("when", "events")
SEGMENT_EVENTS_KEYS = ("type", "match", "count", "within", "traffic")
REENROLL_MODES = ("never", "always")
REENROLL_KEYS = ("after",)
EXIT_KEYS = ("when",)
STEP_KINDS = m.STEP_KINDS
STEP_EXTRA_KEYS: dict[str, tuple[str, ...]] = {"wait_for": ("on_event", "on_timeout")}
WAIT_KEYS = ("until",)
WAIT_FOR_KEYS = ("event", "segment", "match", "timeout", "count")
BRANCH_CASE_KEYS = ("when", "goto")
SEND_KEYS = ("variants", "weights", "winner")
WINNER_KEYS = ("metric", "after", "min_sample", "stage", "within")
SPLIT_ARM_KEYS = ("weight", "goto")
SCORE_KEYS = ("points", "reason")
TAG_KEYS = ("add", "remove")
#: The keys inside each step kind's body (`wait_for: {event: …}`), for the hint
#: when one is written beside the kind instead (NOTIFY_KEYS is defined above).
STEP_BODY_KEYS: dict[str, tuple[str, ...]] = {
    "wait": WAIT_KEYS,
    "wait_for": WAIT_FOR_KEYS,
    "score": SCORE_KEYS,
    "notify": NOTIFY_KEYS,
}


def misplaced_in_step(kind: str) -> dict[str, str]:
    """Keys of the body of a `kind` step written beside it, at the step's level."""
    return {
        key: f"goes inside '{kind}:' (indent it under '{kind}')"
        for key in STEP_BODY_KEYS.get(kind, ())
    }


def misplaced_in_body(kind: str) -> dict[str, str]:
    """Keys of a `kind` step written inside its body, one level too deep."""
    return {
        key: f"goes beside '{kind}:', not inside it (indent it as '{kind}' is)"
        for key in ("id", *STEP_EXTRA_KEYS.get(kind, ()))
    }


#: Contact fields a `set` step may write besides declared properties.
SETTABLE_FIELDS = ("first_name", "last_name", "company", "timezone", "owner")

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
HOURS_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
CLOCK_PATTERN = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
STEP_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_duration(value: Any) -> timedelta | None:
    """`30s`, `15m`, `36h`, `2d`, `1w`, or combined like `1d12h`; None if invalid."""
    if isinstance(value, int | float) or not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if not _DURATION.match(text):
        return None
    seconds = sum(int(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds) if seconds > 0 else None


class Context:
    """Problems for one file, and helpers that report instead of raising."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def error(self, line: int | None, message: str, path: str = "") -> None:
        self.problems.append(Problem(self.file, line, message, path))

    def mapping(self, value: Any, line: int | None, path: str) -> LineDict | None:
        if isinstance(value, LineDict):
            return value
        self.error(line, f"{path or 'the file'} must be a mapping (key: value)", path)
        return None

    def keys(
        self,
        data: LineDict,
        allowed: Iterable[str],
        path: str,
        required: Iterable[str] = (),
        elsewhere: Mapping[str, str] | None = None,
    ) -> None:
        """Report unknown keys and missing required ones.

        `elsewhere` names keys that are valid one level up or down (key → where
        they go): a mis-indented key then gets that fix, not a look-alike here.
        """
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                where = f" in {path}" if path else ""
                hint = (
                    f": '{key}' {elsewhere[key]}"
                    if elsewhere and key in elsewhere
                    else did_you_mean(key, allowed)
                )
                self.error(
                    data.line_of(key), f"unknown key '{key}'{where}{hint}", join_path(path, key)
                )
        for key in required:
            if key not in data:
                where = f"{path} " if path else ""
                self.error(data.line, f"{where}missing required key '{key}'", join_path(path, key))

    def duration(self, data: LineDict, key: str, path: str) -> timedelta | None:
        value = data.get(key)
        if value is None:
            return None
        parsed = parse_duration(value)
        if parsed is None:
            self.error(
                data.line_of(key),
                f"{join_path(path, key)}: invalid duration {value!r} "
                "(use a number and a unit: 30s, 15m, 36h, 2d, 1w)",
                join_path(path, key),
            )
        return parsed

    def number(
        self,
        data: LineDict,
        key: str,
        path: str,
        *,
        integer: bool = False,
        minimum: float | None = None,
    ) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or (minimum is not None and value < minimum):
            kind = "a whole number" if integer else "a number"
            bound = f" ≥ {minimum:g}" if minimum is not None else ""
            self.error(
                data.line_of(key),
                f"{join_path(path, key)}: expected {kind}{bound}, got {value!r}",
                join_path(path, key),
            )
            return None
        return float(value)

    def string(self, data: LineDict, key: str, path: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(
                data.line_of(key),
                f"{join_path(path, key)}: expected a text value, got {value!r}",
                join_path(path, key),
            )
            return None
        return value.strip()

    def strings(self, data: LineDict, key: str, path: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, LineList) or not all(isinstance(v, str) for v in value):
            self.error(
                data.line_of(key),
                f"{join_path(path, key)}: expected a list of text values",
                join_path(path, key),
            )
            return None
        return tuple(value)


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class ExpressionScope:
    """What an expression may read where it stands: checked at validate time."""

    def __init__(
        self,
        stages: tuple[str, ...],
        properties: Mapping[str, str] | None,
        segments: Iterable[str] | None = None,
    ) -> None:
        """`properties` None: nurture.yaml did not parse, so `contact.x` goes unchecked
        rather than reported as undeclared everywhere; `segments` None likewise leaves
        `in_segment('…')` unchecked."""
        self.stages = stages
        self.contact_fields = (*STANDARD_FIELDS, *properties) if properties is not None else None
        self.segments = tuple(segments) if segments is not None else None

    def compile(
        self,
        ctx: Context,
        value: Any,
        line: int | None,
        path: str,
        *,
        with_event: bool,
        with_segments: bool = False,
    ) -> Expression | None:
        """`with_segments`: `in_segment('NAME')` may be called (a workflow's branch and
        exit conditions, which the executor evaluates with the contact's segments)."""
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            ctx.error(line, f"{path}: expected an expression in quotes, got {value!r}", path)
            return None
        try:
            expression = compile_expression(value)
        except ExpressionSyntaxError as exc:
            ctx.error(line, f"{path}: {exc}", path)
            return None
        allowed = EXPRESSION_NAMES if with_event else EXPRESSION_NAMES - {"event"}
        if with_segments:
            allowed = allowed | {SEGMENT_FUNCTION}
        for name in sorted(expression.names - allowed):
            if name == SEGMENT_FUNCTION:
                ctx.error(
                    line,
                    f"{path}: {SEGMENT_FUNCTION}() is only available in a workflow's "
                    "branch and exit conditions",
                    path,
                )
            elif name == "event":
                ctx.error(
                    line, f"{path}: 'event' is not available here (no event is in play)", path
                )
            else:
                ctx.error(
                    line,
                    f"{path}: unknown name '{name}'{did_you_mean(name, allowed)} "
                    f"(available: {', '.join(sorted(allowed))})",
                    path,
                )
        for root, attribute in sorted(expression.attributes):
            if (
                root == "contact"
                and self.contact_fields is not None
                and attribute not in self.contact_fields
            ):
                ctx.error(
                    line,
                    f"{path}: unknown contact property '{attribute}'"
                    f"{did_you_mean(attribute, self.contact_fields)}; declare custom properties "
                    "under 'properties:' in nurture.yaml",
                    path,
                )
        for function, argument in sorted(expression.calls):
            if function == "stage_index" and self.stages and argument not in self.stages:
                ctx.error(
                    line,
                    f"{path}: unknown stage '{argument}'{did_you_mean(argument, self.stages)}",
                    path,
                )
            elif function == SEGMENT_FUNCTION and with_segments:
                self.check_segment(ctx, argument, line, f"{path}: {SEGMENT_FUNCTION}('{argument}')")
        return expression

    def check_segment(self, ctx: Context, name: str, line: int | None, where: str) -> bool:
        """Whether `name` is a segment of nurture.yaml (unknown: yes); a problem if not."""
        if self.segments is None or name in self.segments:
            return True
        ctx.error(
            line,
            f"{where}: no segment named '{name}'{did_you_mean(name, self.segments)} "
            "(segments are declared under 'segments:' in nurture.yaml)",
            where.split(":", 1)[0],
        )
        return False


def known_stage(
    ctx: Context, data: LineDict, key: str, path: str, stages: tuple[str, ...]
) -> str | None:
    value = ctx.string(data, key, path)
    if value is None or not stages:
        return value
    if value not in stages:
        ctx.error(
            data.line_of(key),
            f"{join_path(path, key)}: unknown stage '{value}'"
            f"{did_you_mean(value, stages)} (stages: {', '.join(stages)})",
            join_path(path, key),
        )
        return None
    return value


def items_of(ctx: Context, value: Any, line: int | None, path: str) -> list[tuple[int, LineDict]]:
    """The mapping items of a list, each problem item reported."""
    if value is None:
        return []
    if not isinstance(value, LineList):
        ctx.error(line, f"{path}: expected a list", path)
        return []
    result = []
    for i, item in enumerate(value):
        item_map = ctx.mapping(item, value.line_of(i), join_path(path, i))
        if item_map is not None:
            result.append((i, item_map))
    return result


def event_type(ctx: Context, data: LineDict, key: str, path: str) -> str | None:
    value = ctx.string(data, key, path)
    if value is None:
        return None
    if not is_known_event_type(value):
        ctx.error(
            data.line_of(key),
            f"{join_path(path, key)}: unknown event type '{value}'"
            f"{did_you_mean(value, EVENT_TYPES)} (custom events start with 'custom.')",
            join_path(path, key),
        )
        return None
    return value
