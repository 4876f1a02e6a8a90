"""workflows/*.yaml → `Workflow`: enrollment, steps, and the step graph checks."""

from __future__ import annotations

import hashlib
from typing import Any

from nurture.definitions import model as m
from nurture.definitions.base import (
    ENROLL_KEYS,
    EXIT_KEYS,
    NAME_PATTERN,
    REENROLL_KEYS,
    REENROLL_MODES,
    STEP_EXTRA_KEYS,
    STEP_ID_PATTERN,
    STEP_KINDS,
    WORKFLOW_KEYS,
    Context,
    ExpressionScope,
    did_you_mean,
    event_type,
    known_stage,
    misplaced_in_step,
)
from nurture.definitions.experiments import parse_holdout
from nurture.definitions.reader import LineDict, LineList, load_yaml
from nurture.definitions.steps import STEP_BUILDERS
from nurture.errors import Problem

# --- workflows ------------------------------------------------------------------


def parse_workflow(
    text: str, file: str, config: m.ProjectConfig | None
) -> tuple[m.Workflow | None, list[Problem]]:
    data, problems = load_yaml(text, file)
    ctx = Context(file)
    ctx.problems.extend(problems)
    if data is None:
        if not problems:
            ctx.error(1, "the workflow file is empty")
        return None, ctx.problems
    root = ctx.mapping(data, 1, "")
    if root is None:
        return None, ctx.problems
    stages = config.stages if config else ()
    # Without a config (nurture.yaml did not parse) names are not checked against it.
    scope = ExpressionScope(
        stages,
        config.properties if config else None,
        config.segments if config else None,
    )
    ctx.keys(root, WORKFLOW_KEYS, "", required=("name", "enroll", "steps"))
    name = ctx.string(root, "name", "")
    if name and not NAME_PATTERN.match(name):
        ctx.error(
            root.line_of("name"),
            f"name: invalid workflow name {name!r} (lowercase letters, digits, - and _)",
            "name",
        )
    description = root.get("description") or ""
    if not isinstance(description, str):
        ctx.error(root.line_of("description"), "description: expected text", "description")
        description = ""
    enroll = _enroll(ctx, root, stages, scope)
    reenroll = _reenroll(ctx, root)
    exit_when = None
    if "exit" in root and (x := ctx.mapping(root["exit"], root.line_of("exit"), "exit")):
        ctx.keys(x, EXIT_KEYS, "exit", required=("when",))
        if "when" in x:
            exit_when = scope.compile(
                ctx, x["when"], x.line_of("when"), "exit.when", with_event=False, with_segments=True
            )
    holdout = parse_holdout(ctx, root)
    steps = _steps(ctx, root.get("steps"), root.line_of("steps"), scope, config)
    if ctx.problems or name is None or enroll is None:
        return None, ctx.problems
    return (
        m.Workflow(
            file,
            root.line,
            name=name,
            enroll=enroll,
            steps=tuple(steps),
            description=description,
            reenroll=reenroll,
            exit_when=exit_when,
            holdout=holdout,
            content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            source=text,
        ),
        [],
    )


def _enroll(
    ctx: Context, root: LineDict, stages: tuple[str, ...], scope: ExpressionScope
) -> m.Enroll | None:
    if "enroll" not in root:
        return None
    data = ctx.mapping(root["enroll"], root.line_of("enroll"), "enroll")
    if data is None:
        return None
    ctx.keys(data, ENROLL_KEYS, "enroll")
    triggers = [k for k in ("stage", "event", "when", "segment") if k in data]
    if len(triggers) != 1:
        ctx.error(
            data.line,
            "enroll: expected exactly one of 'stage', 'event', 'when' or 'segment'",
            "enroll",
        )
        return None
    if "match" in data and "event" not in data:
        ctx.error(
            data.line_of("match"),
            "enroll.match: only an 'event' enrollment takes a match filter",
            "enroll.match",
        )
    stage = known_stage(ctx, data, "stage", "enroll", stages) if "stage" in data else None
    event = event_type(ctx, data, "event", "enroll") if "event" in data else None
    when = (
        scope.compile(ctx, data["when"], data.line_of("when"), "enroll.when", with_event=False)
        if "when" in data
        else None
    )
    match = (
        scope.compile(ctx, data["match"], data.line_of("match"), "enroll.match", with_event=True)
        if "match" in data and "event" in data
        else None
    )
    segment = ctx.string(data, "segment", "enroll") if "segment" in data else None
    if segment is not None and not scope.check_segment(
        ctx, segment, data.line_of("segment"), "enroll.segment"
    ):
        segment = None
    if stage is None and event is None and when is None and segment is None:
        return None
    return m.Enroll(
        ctx.file, data.line, stage=stage, event=event, when=when, match=match, segment=segment
    )


def _reenroll(ctx: Context, root: LineDict) -> m.Reenroll:
    value = root.get("reenroll", "never")
    if value in REENROLL_MODES:
        return m.Reenroll(mode=value)
    if isinstance(value, LineDict):
        ctx.keys(value, REENROLL_KEYS, "reenroll", required=("after",))
        after = ctx.duration(value, "after", "reenroll")
        if after:
            return m.Reenroll(mode="after", after=after)
        return m.Reenroll()
    ctx.error(
        root.line_of("reenroll"),
        f"reenroll: expected never, always or {{after: 90d}}, got {value!r}",
        "reenroll",
    )
    return m.Reenroll()


def _steps(
    ctx: Context,
    value: Any,
    line: int | None,
    scope: ExpressionScope,
    config: m.ProjectConfig | None,
) -> list[m.Step]:
    if value is None:
        return []
    if not isinstance(value, LineList) or not value:
        ctx.error(line, "steps: expected a non-empty list of steps", "steps")
        return []
    raw: list[tuple[int, int, str, Any, LineDict | None, str | None]] = []
    for i, item in enumerate(value):
        item_line = value.line_of(i)
        path = f"steps[{i}]"
        if isinstance(item, str):
            if item != "exit":
                ctx.error(
                    item_line,
                    f"{path}: unknown step {item!r} (only 'exit' stands alone; "
                    f"other steps are 'kind: value', kinds: {', '.join(STEP_KINDS)})",
                    path,
                )
                continue
            raw.append((i, item_line, "exit", None, None, None))
            continue
        data = ctx.mapping(item, item_line, path)
        if data is None:
            continue
        kinds = [k for k in data if k in STEP_KINDS]
        if len(kinds) != 1:
            others = [k for k in data if k not in STEP_KINDS and k != "id"]
            hint = did_you_mean(others[0], STEP_KINDS) if others and not kinds else ""
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            ctx.error(
                data.line,
                f"{path}: a step needs exactly one kind ({found}){hint}; kinds: "
                f"{', '.join(STEP_KINDS)}",
                path,
            )
            continue
        kind = kinds[0]
        ctx.keys(
            data,
            ("id", kind, *STEP_EXTRA_KEYS.get(kind, ())),
            path,
            elsewhere=misplaced_in_step(kind),
        )
        step_id = data.get("id")
        if step_id is not None and (
            not isinstance(step_id, str) or not STEP_ID_PATTERN.match(step_id)
        ):
            ctx.error(
                data.line_of("id"),
                f"{path}.id: invalid step id {step_id!r} (lowercase letters, digits, - and _)",
                f"{path}.id",
            )
            step_id = None
        raw.append((i, data.line, kind, data[kind], data, step_id))

    ids = _assign_ids(ctx, raw)
    steps: list[m.Step] = []
    for position, ((i, item_line, kind, body, data, explicit), step_id) in enumerate(
        zip(raw, ids, strict=True)
    ):
        base = {
            "file": ctx.file,
            "line": item_line,
            "id": step_id,
            "index": position,
            "explicit_id": explicit is not None,
        }
        path = f"steps[{i}]"
        builder = STEP_BUILDERS[kind]
        step = builder(ctx, body, data, base, path, scope, config)
        if step is not None:
            steps.append(step)
    if len(steps) == len(raw):
        _check_targets(ctx, steps)
    return steps


def _assign_ids(
    ctx: Context, raw: list[tuple[int, int, str, Any, LineDict | None, str | None]]
) -> list[str]:
    """Explicit ids win; a send step is named after its template; others by kind and position."""
    explicit: dict[str, int] = {}
    for i, line, _kind, _body, _data, step_id in raw:
        if step_id is None:
            continue
        if step_id in explicit:
            ctx.error(
                line,
                f"steps[{i}].id: duplicate step id '{step_id}' (first at line {explicit[step_id]})",
                f"steps[{i}].id",
            )
        explicit.setdefault(step_id, line)
    taken = set(explicit)
    ids = []
    for position, (_i, _line, kind, body, _data, step_id) in enumerate(raw):
        if step_id is None:
            candidate = body.rsplit("/", 1)[-1] if kind == "send" and isinstance(body, str) else ""
            if not candidate or candidate in taken or not STEP_ID_PATTERN.match(candidate):
                candidate = f"{kind.replace('_', '-')}-{position + 1}"
            while candidate in taken:
                candidate += "_"
            step_id = candidate
        taken.add(step_id)
        ids.append(step_id)
    return ids


def successors(step: m.Step, steps: tuple[m.Step, ...] | list[m.Step]) -> list[str]:
    """Where control can go after `step`; "falling off the end" completes the workflow."""
    following = steps[step.index + 1].id if step.index + 1 < len(steps) else None
    targets: list[str | None]
    if isinstance(step, m.ExitStep):
        targets = []
    elif isinstance(step, m.GotoStep):
        targets = [step.target]
    elif isinstance(step, m.WaitForStep):
        targets = [step.on_event or following, step.on_timeout or following]
    elif isinstance(step, m.BranchStep):
        targets = [case.goto for case in step.cases]
        if step.cases[-1].when is not None:
            targets.append(following)
    elif isinstance(step, m.SplitStep):
        targets = [arm.goto for arm in step.arms]
    else:
        targets = [following]
    return [t for t in targets if t is not None]


def _check_targets(ctx: Context, steps: list[m.Step]) -> None:
    ids = [step.id for step in steps]
    bad = False
    for step in steps:
        references: list[tuple[str, str | None, int | None]] = []
        if isinstance(step, m.GotoStep):
            references.append(("goto", step.target, step.line))
        elif isinstance(step, m.WaitForStep):
            references += [
                ("on_event", step.on_event, step.line),
                ("on_timeout", step.on_timeout, step.line),
            ]
        elif isinstance(step, m.BranchStep):
            references += [("goto", case.goto, case.line) for case in step.cases]
        elif isinstance(step, m.SplitStep):
            references += [("goto", arm.goto, arm.line) for arm in step.arms]
        for key, target, line in references:
            if target is not None and target not in ids:
                bad = True
                ctx.error(
                    line,
                    f"step '{step.id}': {key} target '{target}' does not exist"
                    f"{did_you_mean(target, ids)}",
                    f"steps[{step.index}].{key}",
                )
            elif target == step.id and isinstance(step, m.GotoStep | m.BranchStep | m.SplitStep):
                bad = True
                ctx.error(
                    line,
                    f"step '{step.id}': {key} points at itself (an endless loop)",
                    f"steps[{step.index}].{key}",
                )
    if bad:
        return
    reachable: set[str] = set()
    frontier = [steps[0].id]
    by_id = {step.id: step for step in steps}
    while frontier:
        current = frontier.pop()
        if current in reachable:
            continue
        reachable.add(current)
        frontier.extend(successors(by_id[current], steps))
    for step in steps:
        if step.id not in reachable:
            ctx.error(
                step.line,
                f"step '{step.id}' is unreachable: no step leads to it (add an "
                "'id' and a goto/branch to it, or remove it)",
                f"steps[{step.index}]",
            )
    _check_loops_wait(ctx, steps, by_id)


def _check_loops_wait(ctx: Context, steps: list[m.Step], by_id: dict[str, m.Step]) -> None:
    """A cycle with no wait would spin forever inside one worker turn."""
    pausing = (m.WaitStep, m.WaitForStep)
    for start in steps:
        if isinstance(start, pausing):
            continue
        stack, seen = [start.id], set()
        while stack:
            current = stack.pop()
            for nxt in successors(by_id[current], steps):
                if nxt == start.id:
                    ctx.error(
                        start.line,
                        f"step '{start.id}' is in a loop with no wait: "
                        "the contact would cycle forever; add a wait or wait_for to the loop",
                        f"steps[{start.index}]",
                    )
                    return
                if nxt not in seen and not isinstance(by_id[nxt], pausing):
                    seen.add(nxt)
                    stack.append(nxt)
