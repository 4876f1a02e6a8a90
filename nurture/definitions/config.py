"""nurture.yaml → `ProjectConfig`: stages, properties, scoring, handoff, sending."""

from __future__ import annotations

import itertools
import re
from email.utils import parseaddr
from typing import Any

from nurture.addresses import canonical_email
from nurture.definitions import model as m
from nurture.definitions.base import (
    ASSIGN_KEYS,
    ASSIGN_RULE_KEYS,
    CONFIG_KEYS,
    DECAY_KEYS,
    FIT_KEYS,
    HANDOFF_KEYS,
    NAME_PATTERN,
    NOTIFY_KEYS,
    ON_ACCEPT_KEYS,
    ON_REJECT_KEYS,
    ON_REJECT_SCORES,
    RULE_KEYS,
    SCORING_KEYS,
    SENDING_KEYS,
    SLA_KEYS,
    TRACKING_KEYS,
    WEBHOOK_KEYS,
    WEBHOOK_TOPICS,
    Context,
    ExpressionScope,
    did_you_mean,
    event_type,
    items_of,
    known_stage,
)
from nurture.definitions.fields import PROPERTY_TYPES, STANDARD_FIELDS
from nurture.definitions.reader import LineDict, LineList, load_yaml
from nurture.definitions.segments import parse_segments
from nurture.definitions.sending import parse_sending
from nurture.definitions.tracking import parse_count, parse_tracking
from nurture.errors import Problem

# --- nurture.yaml -------------------------------------------------------------

#: A section's key written at the top of nurture.yaml (`frequency_cap:` not indented
#: under `sending:`): the hint says where it goes.
_SECTION_OF: dict[str, str] = {
    key: f"goes inside '{section}:' (indent it under '{section}')"
    for section, keys in (
        ("tracking", TRACKING_KEYS),
        ("handoff", HANDOFF_KEYS),
        ("scoring", SCORING_KEYS),
        ("sending", SENDING_KEYS),
    )
    for key in keys
}


def parse_config(text: str, file: str) -> tuple[m.ProjectConfig | None, list[Problem]]:
    """The config, or None and every problem: what the engine may run on."""
    config, problems = read_config(text, file)
    return (None, problems) if problems else (config, [])


def read_config(text: str, file: str) -> tuple[m.ProjectConfig | None, list[Problem]]:
    """The config built from whatever parsed, with every problem beside it.

    Workflows and templates are checked against this partial config, so one
    mistake in nurture.yaml (a misspelt `frequency_cap`) reports that mistake
    alone, not also every workflow reading a property that *is* declared.
    A property declared with an unknown type still counts as declared here.
    None only when there is nothing to build on (no mapping at the top).
    """
    data, problems = load_yaml(text, file)
    ctx = Context(file)
    ctx.problems.extend(problems)
    if data is None and not problems:
        ctx.error(1, "nurture.yaml is empty: it needs at least 'stages'")
    if data is None:
        return None, ctx.problems
    root = ctx.mapping(data, 1, "")
    if root is None:
        return None, ctx.problems
    ctx.keys(root, CONFIG_KEYS, "", required=("stages",), elsewhere=_SECTION_OF)

    stages = _stages(ctx, root)
    prospect = root.get("prospect_stage")
    if prospect is None:
        prospect_stage = stages[min(3, len(stages) - 1)] if stages else ""
        if stages and "prospect_stage" not in root:
            ctx.error(
                root.line,
                "missing required key 'prospect_stage' (the stage at which "
                "all automated nurture email stops)",
                "prospect_stage",
            )
    else:
        prospect_stage = known_stage(ctx, root, "prospect_stage", "", stages) or ""

    properties = _properties(ctx, root)
    scope = ExpressionScope(stages, properties)
    scoring = _scoring(ctx, root.get("scoring"), root.line_of("scoring"), stages, scope)
    handoff = _handoff(ctx, root.get("handoff"), root.line_of("handoff"), stages, scope)
    sending = parse_sending(ctx, root.get("sending"), root.line_of("sending"))
    webhooks = _webhooks(ctx, root.get("webhooks"), root.line_of("webhooks"))
    tracking = parse_tracking(ctx, root.get("tracking"), root.line_of("tracking"))
    segments = parse_segments(ctx, root.get("segments"), root.line_of("segments"), scope)
    return (
        m.ProjectConfig(
            file=file,
            stages=stages,
            prospect_stage=prospect_stage,
            properties=properties,
            scoring=scoring,
            handoff=handoff,
            sending=sending,
            webhooks=webhooks,
            tracking=tracking,
            segments=segments,
        ),
        ctx.problems,
    )


def _stages(ctx: Context, root: LineDict) -> tuple[str, ...]:
    value = root.get("stages")
    if value is None:
        return ()
    if not isinstance(value, LineList) or not value:
        ctx.error(
            root.line_of("stages"), "stages: expected a non-empty list of stage names", "stages"
        )
        return ()
    seen: list[str] = []
    for i, stage in enumerate(value):
        if not isinstance(stage, str) or not NAME_PATTERN.match(stage):
            ctx.error(
                value.line_of(i),
                f"stages[{i}]: invalid stage name {stage!r} (lowercase letters, digits, - and _)",
                f"stages[{i}]",
            )
        elif stage in seen:
            ctx.error(
                value.line_of(i), f"stages[{i}]: stage '{stage}' is listed twice", f"stages[{i}]"
            )
        else:
            seen.append(stage)
    return tuple(seen)


def _properties(ctx: Context, root: LineDict) -> dict[str, str]:
    value = root.get("properties")
    if value is None:
        return {}
    data = ctx.mapping(value, root.line_of("properties"), "properties")
    if data is None:
        return {}
    result: dict[str, str] = {}
    for name, kind in data.items():
        line = data.line_of(name)
        if name in STANDARD_FIELDS:
            ctx.error(
                line,
                f"properties.{name}: '{name}' is a standard contact field; it needs no declaration",
                f"properties.{name}",
            )
        elif not re.match(r"^[a-z_][a-z0-9_]*$", name):
            ctx.error(
                line,
                f"properties.{name}: invalid property name (lowercase letters, digits and _)",
                f"properties.{name}",
            )
        elif kind not in PROPERTY_TYPES:
            ctx.error(
                line,
                f"properties.{name}: unknown type {kind!r}"
                f"{did_you_mean(str(kind), PROPERTY_TYPES)} "
                f"(types: {', '.join(PROPERTY_TYPES)})",
                f"properties.{name}",
            )
            result[name] = "string"  # declared all the same: only read_config keeps it
        else:
            result[name] = kind
    return result


def _scoring(
    ctx: Context, value: Any, line: int | None, stages: tuple[str, ...], scope: ExpressionScope
) -> m.Scoring:
    if value is None:
        return m.Scoring()
    data = ctx.mapping(value, line, "scoring")
    if data is None:
        return m.Scoring()
    ctx.keys(data, SCORING_KEYS, "scoring")
    rules = []
    for i, rule in items_of(ctx, data.get("rules"), data.line_of("rules"), "scoring.rules"):
        path = f"scoring.rules[{i}]"
        ctx.keys(rule, RULE_KEYS, path, required=("event", "points"))
        event = event_type(ctx, rule, "event", path)
        points = ctx.number(rule, "points", path)
        when = (
            scope.compile(ctx, rule["when"], rule.line_of("when"), f"{path}.when", with_event=True)
            if "when" in rule
            else None
        )
        per_day = ctx.number(rule, "max_per_day", path, integer=True, minimum=1)
        total = ctx.number(rule, "max_total", path, integer=True, minimum=1)
        count = parse_count(ctx, rule, path)
        if event and points is not None:
            rules.append(
                m.ScoringRule(
                    ctx.file,
                    rule.line,
                    key=f"rule:{i}:{event}",
                    event=event,
                    points=points,
                    when=when,
                    max_per_day=int(per_day) if per_day else None,
                    max_total=int(total) if total else None,
                    count=count,
                )
            )
    fit = []
    for i, rule in items_of(ctx, data.get("fit"), data.line_of("fit"), "scoring.fit"):
        path = f"scoring.fit[{i}]"
        ctx.keys(rule, FIT_KEYS, path, required=("when", "points"))
        points = ctx.number(rule, "points", path)
        when = (
            scope.compile(ctx, rule["when"], rule.line_of("when"), f"{path}.when", with_event=False)
            if "when" in rule
            else None
        )
        if when is not None and points is not None:
            fit.append(m.FitRule(ctx.file, rule.line, key=f"fit:{i}", when=when, points=points))
    half_life = None
    decay = data.get("decay")
    if decay is not None:
        decay_map = ctx.mapping(decay, data.line_of("decay"), "scoring.decay")
        if decay_map is not None:
            ctx.keys(decay_map, DECAY_KEYS, "scoring.decay")
            half_life = ctx.duration(decay_map, "half_life", "scoring.decay")
    thresholds = _thresholds(ctx, data, stages)
    return m.Scoring(tuple(rules), tuple(fit), half_life, thresholds)


def _thresholds(
    ctx: Context, data: LineDict, stages: tuple[str, ...]
) -> tuple[tuple[str, float], ...]:
    value = data.get("thresholds")
    if value is None:
        return ()
    table = ctx.mapping(value, data.line_of("thresholds"), "scoring.thresholds")
    if table is None:
        return ()
    found: list[tuple[int, str, float]] = []
    for stage in table:
        path = f"scoring.thresholds.{stage}"
        if stages and stage not in stages:
            ctx.error(
                table.line_of(stage),
                f"{path}: unknown stage '{stage}'{did_you_mean(stage, stages)}",
                path,
            )
            continue
        points = ctx.number(table, stage, "scoring.thresholds")
        if points is not None and stages:
            found.append((stages.index(stage), stage, points))
    found.sort()
    for (_, lower, low), (_, higher, high) in itertools.pairwise(found):
        if high <= low:
            ctx.error(
                table.line_of(higher),
                f"scoring.thresholds: '{higher}' ({high:g}) must be above '{lower}' ({low:g}), "
                "since it comes later in the ladder",
                f"scoring.thresholds.{higher}",
            )
    return tuple((stage, points) for _, stage, points in found)


def parse_notify(ctx: Context, data: LineDict, path: str) -> m.Notify | None:
    ctx.keys(data, NOTIFY_KEYS, path)
    kinds = [k for k in ("webhook", "email") if k in data]
    if len(kinds) != 1:
        ctx.error(data.line, f"{path}: expected exactly one of 'webhook' or 'email'", path)
        return None
    kind = kinds[0]
    target = ctx.string(data, kind, path)
    template = ctx.string(data, "template", path)
    if target is None:
        return None
    if kind == "webhook" and not re.match(r"^https?://[^\s/]+", target):
        ctx.error(
            data.line_of(kind),
            f"{path}.webhook: expected an http(s) URL, got {target!r}",
            f"{path}.webhook",
        )
        return None
    if kind == "email" and target != "owner" and "@" not in parseaddr(target)[1]:
        ctx.error(
            data.line_of(kind),
            f"{path}.email: expected 'owner' or an email address, got {target!r}",
            f"{path}.email",
        )
        return None
    if kind == "webhook" and template:
        ctx.error(
            data.line_of("template"),
            f"{path}.template: only email notifications use a template",
            f"{path}.template",
        )
    return m.Notify(ctx.file, data.line, kind=kind, target=target, template=template)  # type: ignore[arg-type]


def _handoff(
    ctx: Context, value: Any, line: int | None, stages: tuple[str, ...], scope: ExpressionScope
) -> m.Handoff | None:
    if value is None:
        return None
    data = ctx.mapping(value, line, "handoff")
    if data is None:
        return None
    ctx.keys(data, HANDOFF_KEYS, "handoff", required=("at",))
    at = known_stage(ctx, data, "at", "handoff", stages)

    assign = m.Assign()
    if "assign" in data and (
        a := ctx.mapping(data["assign"], data.line_of("assign"), "handoff.assign")
    ):
        ctx.keys(a, ASSIGN_KEYS, "handoff.assign")
        round_robin = ctx.strings(a, "round_robin", "handoff.assign") or ()
        round_robin = tuple(canonical_email(owner) or owner for owner in round_robin)
        for i, owner in enumerate(round_robin):
            if canonical_email(owner) is None:
                line_i = (
                    a["round_robin"].line_of(i)
                    if isinstance(a["round_robin"], LineList)
                    else a.line
                )
                ctx.error(
                    line_i,
                    f"handoff.assign.round_robin[{i}]: expected an email address, got {owner!r}",
                    f"handoff.assign.round_robin[{i}]",
                )
        rules = []
        for i, rule in items_of(ctx, a.get("rules"), a.line_of("rules"), "handoff.assign.rules"):
            path = f"handoff.assign.rules[{i}]"
            ctx.keys(rule, ASSIGN_RULE_KEYS, path, required=("owner",))
            rule_owner = ctx.string(rule, "owner", path)
            if rule_owner and canonical_email(rule_owner) is None:
                ctx.error(
                    rule.line_of("owner"),
                    f"{path}.owner: expected an email address, got {rule_owner!r}",
                    f"{path}.owner",
                )
            elif rule_owner:
                rule_owner = canonical_email(rule_owner)
            when = (
                scope.compile(
                    ctx, rule["when"], rule.line_of("when"), f"{path}.when", with_event=False
                )
                if "when" in rule
                else None
            )
            if rule_owner:
                rules.append(m.AssignRule(ctx.file, rule.line, owner=rule_owner, when=when))
        assign = m.Assign(tuple(round_robin), tuple(rules))

    notify = []
    for i, item in items_of(ctx, data.get("notify"), data.line_of("notify"), "handoff.notify"):
        parsed = parse_notify(ctx, item, f"handoff.notify[{i}]")
        if parsed:
            notify.append(parsed)

    sla = m.Sla()
    if "sla" in data and (s := ctx.mapping(data["sla"], data.line_of("sla"), "handoff.sla")):
        ctx.keys(s, SLA_KEYS, "handoff.sla")
        sla = m.Sla(
            accept_within=ctx.duration(s, "accept_within", "handoff.sla"),
            escalate_after=ctx.duration(s, "escalate_after", "handoff.sla"),
            escalate_to=ctx.string(s, "escalate_to", "handoff.sla"),
        )

    on_accept = m.OnAccept()
    if "on_accept" in data and (
        accept := ctx.mapping(data["on_accept"], data.line_of("on_accept"), "handoff.on_accept")
    ):
        ctx.keys(accept, ON_ACCEPT_KEYS, "handoff.on_accept")
        on_accept = m.OnAccept(stage=known_stage(ctx, accept, "stage", "handoff.on_accept", stages))

    on_reject = m.OnReject()
    if "on_reject" in data and (
        r := ctx.mapping(data["on_reject"], data.line_of("on_reject"), "handoff.on_reject")
    ):
        ctx.keys(r, ON_REJECT_KEYS, "handoff.on_reject")
        score = r.get("score", "keep")
        if score not in ON_REJECT_SCORES:
            ctx.error(
                r.line_of("score"),
                f"handoff.on_reject.score: expected one of "
                f"{', '.join(ON_REJECT_SCORES)}, got {score!r}",
                "handoff.on_reject.score",
            )
            score = "keep"
        on_reject = m.OnReject(
            stage=known_stage(ctx, r, "stage", "handoff.on_reject", stages),
            score=score,
            workflow=ctx.string(r, "workflow", "handoff.on_reject"),
            line=r.line_of("workflow"),
        )
    if at is None:
        return None
    return m.Handoff(
        ctx.file,
        data.line,
        at=at,
        assign=assign,
        notify=tuple(notify),
        sla=sla,
        on_accept=on_accept,
        on_reject=on_reject,
    )


def _webhooks(ctx: Context, value: Any, line: int | None) -> tuple[m.OutboundWebhook, ...]:
    found = []
    for i, item in items_of(ctx, value, line, "webhooks"):
        path = f"webhooks[{i}]"
        ctx.keys(item, WEBHOOK_KEYS, path, required=("url", "events"))
        url = ctx.string(item, "url", path)
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            ctx.error(
                item.line_of("url"),
                f"{path}.url: expected an http(s) URL, got {url!r}",
                f"{path}.url",
            )
            url = None
        events = ctx.strings(item, "events", path) or ()
        for event in events:
            if event not in WEBHOOK_TOPICS:
                ctx.error(
                    item.line_of("events"),
                    f"{path}.events: unknown event {event!r}"
                    f"{did_you_mean(event, WEBHOOK_TOPICS)} (one of: "
                    f"{', '.join(WEBHOOK_TOPICS)})",
                    f"{path}.events",
                )
        if url and events:
            found.append(m.OutboundWebhook(ctx.file, item.line, url=url, events=tuple(events)))
    return tuple(found)
