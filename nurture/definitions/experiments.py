"""Experiments in a workflow file: a `send` step's variants (with an optional winner),
`split:` steps and the workflow's `holdout:`, each problem at its `file:line`.

`steps.py` hands a `send:` written as a mapping here, and `split:` steps;
`workflow.py` reads `holdout:` here. What the engine does with them lives in
`nurture.engine.assignment` (who gets what) and `nurture.engine.winners`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from nurture.definitions import model as m
from nurture.definitions.base import (
    NAME_PATTERN,
    SEND_KEYS,
    SPLIT_ARM_KEYS,
    WINNER_KEYS,
    Context,
    did_you_mean,
    items_of,
    join_path,
    known_stage,
)
from nurture.definitions.reader import LineDict

TEMPLATE_PATTERN = re.compile(r"^[\w-]+(?:/[\w-]+)*$")
#: When a `winner:` says nothing else: a week, and 100 sends of each variant.
DEFAULT_WINNER_AFTER = timedelta(days=7)
DEFAULT_MIN_SAMPLE = 100
_HOLDOUT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_variants(
    ctx: Context, spec: LineDict, base: dict[str, Any], path: str, stages: tuple[str, ...]
) -> m.SendStep | None:
    """`send: {variants: {a: lead/guide, b: lead/guide-short}, weights: …, winner: …}`."""
    here = f"{path}.send"
    ctx.keys(spec, SEND_KEYS, here, required=("variants",))
    raw = ctx.mapping(spec.get("variants"), spec.line_of("variants"), f"{here}.variants")
    if raw is None:
        return None
    problems = len(ctx.problems)
    names: list[tuple[str, str, int]] = []
    for name, template in raw.items():
        line = raw.line_of(name)
        where = f"{here}.variants.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            ctx.error(
                line,
                f"{here}.variants: invalid variant name {name!r} "
                "(lowercase letters, digits, - and _: a, b, short…)",
                where,
            )
        elif not isinstance(template, str) or not TEMPLATE_PATTERN.match(template):
            ctx.error(
                line,
                f"{where}: expected a template name like 'lead/guide' "
                f"(templates/lead/guide.mjml), got {template!r}",
                where,
            )
        else:
            names.append((name, template, line))
    if len(raw) < 2:
        ctx.error(
            raw.line,
            f"{here}.variants: an A/B test needs at least two variants "
            "(one template alone: write 'send: lead/guide')",
            f"{here}.variants",
        )
    weights = _weights(ctx, spec, here, [n for n, _, _ in names])
    winner = _winner(ctx, spec, here, stages) if "winner" in spec else None
    if len(ctx.problems) > problems or not names:
        return None
    variants = tuple(
        m.Variant(ctx.file, line, name=name, template=template, weight=weights.get(name, 1.0))
        for name, template, line in names
    )
    return m.SendStep(**base, template=variants[0].template, variants=variants, winner=winner)


def _weights(ctx: Context, spec: LineDict, here: str, names: list[str]) -> dict[str, float]:
    """`weights: {a: 70, b: 30}`: one positive number per variant (equal when absent)."""
    if "weights" not in spec:
        return {}
    raw = ctx.mapping(spec["weights"], spec.line_of("weights"), f"{here}.weights")
    if raw is None:
        return {}
    weights: dict[str, float] = {}
    for name, value in raw.items():
        where = f"{here}.weights.{name}"
        if name not in names:
            ctx.error(
                raw.line_of(name),
                f"{here}.weights: '{name}' is not one of the variants "
                f"({', '.join(names)}){did_you_mean(str(name), names)}",
                where,
            )
        elif _positive(value) is None:
            ctx.error(raw.line_of(name), f"{where}: expected a number > 0, got {value!r}", where)
        else:
            weights[name] = float(value)
    missing = [n for n in names if n not in raw]
    if missing:
        ctx.error(
            raw.line,
            f"{here}.weights: no weight for {', '.join(missing)} "
            "(give every variant one, or leave weights out for equal shares)",
            f"{here}.weights",
        )
    return weights


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _winner(ctx: Context, spec: LineDict, here: str, stages: tuple[str, ...]) -> m.Winner | None:
    path = f"{here}.winner"
    data = ctx.mapping(spec["winner"], spec.line_of("winner"), path)
    if data is None:
        return None
    ctx.keys(data, WINNER_KEYS, path, required=("metric",))
    metric = ctx.string(data, "metric", path)
    if metric is not None and metric not in m.WINNER_METRICS:
        ctx.error(
            data.line_of("metric"),
            f"{path}.metric: unknown metric '{metric}'{did_you_mean(metric, m.WINNER_METRICS)} "
            f"(metrics: {', '.join(m.WINNER_METRICS)})",
            f"{path}.metric",
        )
        metric = None
    after = ctx.duration(data, "after", path) if "after" in data else DEFAULT_WINNER_AFTER
    sample = ctx.number(data, "min_sample", path, integer=True, minimum=1)
    stage: str | None = None
    within: timedelta | None = None
    if metric == "reached_stage":
        for key in ("stage", "within"):
            if key not in data:
                ctx.error(
                    data.line,
                    f"{path}: the reached_stage metric needs '{key}' "
                    "(e.g. {metric: reached_stage, stage: mql, within: 14d})",
                    join_path(path, key),
                )
        stage = known_stage(ctx, data, "stage", path, stages) if "stage" in data else None
        within = ctx.duration(data, "within", path)
    else:
        for key in ("stage", "within"):
            if key in data:
                ctx.error(
                    data.line_of(key),
                    f"{path}.{key}: only the reached_stage metric takes '{key}'",
                    join_path(path, key),
                )
    if metric is None or after is None or (metric == "reached_stage" and not (stage and within)):
        return None
    return m.Winner(
        ctx.file,
        data.line,
        metric=metric,
        after=after,
        min_sample=int(sample) if sample is not None else DEFAULT_MIN_SAMPLE,
        stage=stage,
        within=within,
    )


def parse_split(
    ctx: Context,
    body: Any,
    data: LineDict | None,
    base: dict[str, Any],
    path: str,
    scope: Any,
    config: m.ProjectConfig | None,
) -> m.Step | None:
    """`split: [{weight: 50, goto: short-path}, {weight: 50, goto: long-path}]`."""
    here = f"{path}.split"
    items = items_of(ctx, body, base["line"], here)
    problems = len(ctx.problems)
    arms: list[m.SplitArm] = []
    seen: dict[str, int] = {}
    for i, arm in items:
        where = f"{here}[{i}]"
        ctx.keys(arm, SPLIT_ARM_KEYS, where, required=("goto",))
        goto = ctx.string(arm, "goto", where)
        weight = 1.0
        if "weight" in arm:
            value = _positive(arm["weight"])
            if value is None:
                ctx.error(
                    arm.line_of("weight"),
                    f"{where}.weight: expected a number > 0, got {arm['weight']!r}",
                    f"{where}.weight",
                )
            weight = value or 1.0
        if goto is not None and goto in seen:
            ctx.error(
                arm.line_of("goto"),
                f"{where}.goto: '{goto}' is already the arm at line {seen[goto]} "
                "(each arm goes to its own step)",
                f"{where}.goto",
            )
        elif goto is not None:
            seen[goto] = arm.line_of("goto")
            arms.append(m.SplitArm(ctx.file, arm.line, goto=goto, weight=weight))
    if len(items) < 2 and len(ctx.problems) == problems:
        ctx.error(base["line"], f"{here}: a split needs at least two arms", here)
    if len(ctx.problems) > problems:
        return None
    return m.SplitStep(**base, arms=tuple(arms))


def parse_holdout(ctx: Context, root: LineDict) -> float:
    """`holdout: 10%`: the share of enrolled contacts kept in the workflow unemailed."""
    if "holdout" not in root:
        return 0.0
    value = root["holdout"]
    found = _HOLDOUT.match(value) if isinstance(value, str) else None
    share = float(found.group(1)) if found else None
    if share is None or not 0 < share < 100:
        ctx.error(
            root.line_of("holdout"),
            f"holdout: expected a percentage above 0% and below 100%, like '10%', got {value!r}",
            "holdout",
        )
        return 0.0
    return share / 100
