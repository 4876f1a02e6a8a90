"""JSON Schema for editors, built from the parser's own vocabularies.

Editors (VS Code's YAML extension, JetBrains) complete and underline keys from
a schema. Generating it from the constants in `base.py` means the schema can't
drift from what `validate` accepts; a test checks both ways.
"""

from __future__ import annotations

from typing import Any

from nurture.definitions import base as b
from nurture.definitions.fields import PROPERTY_TYPES
from nurture.definitions.model import WEEKDAY_NAMES, WINNER_METRICS
from nurture.events import COUNTS, EVENT_TYPES

JSONSchema = dict[str, Any]

DURATION: JSONSchema = {
    "type": "string",
    "pattern": r"^\s*(\d+\s*[smhdw])+\s*$",
    "description": "A duration: 30s, 15m, 36h, 2d, 1w (or combined, 1d12h).",
}
EXPRESSION: JSONSchema = {
    "type": "string",
    "description": "A Jinja2 expression, sandboxed; contact, event, now, stage_index() in scope.",
}
EVENT_TYPE: JSONSchema = {
    "anyOf": [{"enum": list(EVENT_TYPES)}, {"type": "string", "pattern": r"^custom\..+"}]
}
NAME: JSONSchema = {"type": "string", "pattern": b.NAME_PATTERN.pattern}
COUNT: JSONSchema = {
    "enum": list(COUNTS),
    "description": "human (default): only a person's opens and clicks; all: machines' too.",
}


def _object(keys: tuple[str, ...], properties: dict[str, JSONSchema], **extra: Any) -> JSONSchema:
    assert set(properties) == set(keys), f"schema/parser drift: {set(properties) ^ set(keys)}"
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def _notify() -> JSONSchema:
    return _object(
        b.NOTIFY_KEYS,
        {
            "webhook": {"type": "string", "format": "uri"},
            "email": {"type": "string", "description": "'owner' or an email address"},
            "template": {"type": "string"},
        },
        oneOf=[{"required": ["webhook"]}, {"required": ["email"]}],
    )


def config_schema() -> JSONSchema:
    number = {"type": "number"}
    positive = {"type": "integer", "minimum": 1}
    rule = _object(
        b.RULE_KEYS,
        {
            "event": EVENT_TYPE,
            "when": EXPRESSION,
            "points": number,
            "max_per_day": positive,
            "max_total": positive,
            "count": COUNT,
        },
        required=["event", "points"],
    )
    scoring = _object(
        b.SCORING_KEYS,
        {
            "rules": {"type": "array", "items": rule},
            "fit": {
                "type": "array",
                "items": _object(
                    b.FIT_KEYS, {"when": EXPRESSION, "points": number}, required=["when", "points"]
                ),
            },
            "decay": _object(b.DECAY_KEYS, {"half_life": DURATION}),
            "thresholds": {"type": "object", "additionalProperties": number},
        },
    )
    handoff = _object(
        b.HANDOFF_KEYS,
        {
            "at": NAME,
            "assign": _object(
                b.ASSIGN_KEYS,
                {
                    "round_robin": {"type": "array", "items": {"type": "string"}},
                    "rules": {
                        "type": "array",
                        "items": _object(
                            b.ASSIGN_RULE_KEYS,
                            {"when": EXPRESSION, "owner": {"type": "string"}},
                            required=["owner"],
                        ),
                    },
                },
            ),
            "notify": {"type": "array", "items": _notify()},
            "sla": _object(
                b.SLA_KEYS,
                {
                    "accept_within": DURATION,
                    "escalate_after": DURATION,
                    "escalate_to": {"type": "string"},
                },
            ),
            "on_accept": _object(b.ON_ACCEPT_KEYS, {"stage": NAME}),
            "on_reject": _object(
                b.ON_REJECT_KEYS,
                {"stage": NAME, "score": {"enum": list(b.ON_REJECT_SCORES)}, "workflow": NAME},
            ),
        },
        required=["at"],
    )
    sending = _object(
        b.SENDING_KEYS,
        {
            "from": {"type": "string"},
            "reply_to": {"type": "string"},
            "window": _object(
                b.WINDOW_KEYS,
                {
                    "days": {"type": "array", "items": {"enum": sorted(WEEKDAY_NAMES)}},
                    "hours": {"type": "string", "pattern": b.HOURS_PATTERN.pattern},
                },
            ),
            "default_timezone": {"type": "string"},
            "frequency_cap": _object(
                b.CAP_KEYS, {"max": positive, "per": DURATION}, required=["max", "per"]
            ),
            "require_consent": {"type": "boolean"},
            "soft_bounce_limit": positive,
            "unsubscribe_mailto": {
                "anyOf": [{"type": "string", "format": "email"}, {"const": False}]
            },
            "rate": _object(b.RATE_KEYS, {key: positive for key in b.RATE_KEYS}),
            "connections": {"type": "integer", "minimum": 1, "maximum": 100},
            "warmup": _object(
                b.WARMUP_KEYS,
                {
                    "since": {"type": "string", "format": "date"},
                    "daily": {"type": "array", "items": positive, "minItems": 1},
                },
                required=["since", "daily"],
            ),
            "return_path": {
                "type": "string",
                "pattern": r"^[^@\s<>]*\{send_id\}[^@\s<>]*@[^@\s<>]+$",
            },
        },
    )
    tracking = _object(
        b.TRACKING_KEYS,
        {
            "machine_within": DURATION,
            "burst_within": DURATION,
            "repeat_within": DURATION,
            "sites": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "visitor_window": DURATION,
        },
    )
    segment = _object(
        b.SEGMENT_KEYS,
        {
            "when": EXPRESSION,
            "events": _object(
                b.SEGMENT_EVENTS_KEYS,
                {
                    "type": EVENT_TYPE,
                    "match": EXPRESSION,
                    "count": {
                        "anyOf": [
                            {"type": "integer", "minimum": 0},
                            {"type": "string", "pattern": r"^\s*(>=|<=|==|>|<)?\s*\d+\s*$"},
                        ],
                        "description": 'How many events: ">= 3", "< 2", "== 0" '
                        "(a bare number means at least that many; default 1).",
                    },
                    "within": DURATION,
                    "traffic": COUNT,
                },
                required=["type"],
            ),
        },
        anyOf=[{"required": ["when"]}, {"required": ["events"]}],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nurture.yaml",
        **_object(
            b.CONFIG_KEYS,
            {
                "stages": {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True},
                "prospect_stage": NAME,
                "properties": {
                    "type": "object",
                    "additionalProperties": {"enum": list(PROPERTY_TYPES)},
                },
                "scoring": scoring,
                "handoff": handoff,
                "sending": sending,
                "tracking": tracking,
                "segments": {
                    "type": "object",
                    "propertyNames": {"pattern": b.NAME_PATTERN.pattern},
                    "additionalProperties": segment,
                },
                "webhooks": {
                    "type": "array",
                    "items": _object(
                        b.WEBHOOK_KEYS,
                        {
                            "url": {"type": "string", "format": "uri"},
                            "events": {"type": "array", "items": {"enum": list(b.WEBHOOK_TOPICS)}},
                        },
                        required=["url", "events"],
                    ),
                },
            },
            required=["stages", "prospect_stage"],
        ),
    }


TEMPLATE: JSONSchema = {"type": "string", "description": "template name, e.g. lead/welcome"}
POSITIVE: JSONSchema = {"type": "number", "exclusiveMinimum": 0}


def _variants() -> JSONSchema:
    """`send: {variants: {a: lead/guide, b: …}, weights: {a: 50, b: 50}, winner: {…}}`."""
    return _object(
        b.SEND_KEYS,
        {
            "variants": {
                "type": "object",
                "minProperties": 2,
                "propertyNames": {"pattern": b.NAME_PATTERN.pattern},
                "additionalProperties": TEMPLATE,
            },
            "weights": {"type": "object", "additionalProperties": POSITIVE},
            "winner": _object(
                b.WINNER_KEYS,
                {
                    "metric": {"enum": list(WINNER_METRICS)},
                    "after": DURATION,
                    "min_sample": {"type": "integer", "minimum": 1},
                    "stage": NAME,
                    "within": DURATION,
                },
                required=["metric"],
            ),
        },
        required=["variants"],
    )


def _step_schemas() -> dict[str, JSONSchema]:
    step_id = {"type": "string", "pattern": b.STEP_ID_PATTERN.pattern}
    until = {"type": "string", "description": "'09:00', 'monday' or 'monday 09:00'"}
    bodies: dict[str, JSONSchema] = {
        "send": {"anyOf": [TEMPLATE, _variants()]},
        "wait": {"anyOf": [DURATION, _object(b.WAIT_KEYS, {"until": until}, required=["until"])]},
        "wait_for": _object(
            b.WAIT_FOR_KEYS,
            {
                "event": EVENT_TYPE,
                "segment": NAME,
                "match": EXPRESSION,
                "timeout": DURATION,
                "count": COUNT,
            },
            required=["timeout"],
            oneOf=[{"required": ["event"]}, {"required": ["segment"]}],
        ),
        "branch": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                b.BRANCH_CASE_KEYS, {"when": EXPRESSION, "goto": step_id}, required=["goto"]
            ),
        },
        "split": {
            "type": "array",
            "minItems": 2,
            "items": _object(
                b.SPLIT_ARM_KEYS, {"weight": POSITIVE, "goto": step_id}, required=["goto"]
            ),
        },
        "goto": step_id,
        "set": {
            "type": "object",
            "properties": {
                "tags": _object(
                    b.TAG_KEYS,
                    {
                        "add": {"type": "array", "items": {"type": "string"}},
                        "remove": {"type": "array", "items": {"type": "string"}},
                    },
                )
            },
        },
        "score": {
            "anyOf": [
                {"type": "number"},
                _object(
                    b.SCORE_KEYS,
                    {"points": {"type": "number"}, "reason": {"type": "string"}},
                    required=["points"],
                ),
            ]
        },
        "notify": _notify(),
        "exit": {"anyOf": [{"type": "null"}, NAME]},
    }
    assert set(bodies) == set(b.STEP_KINDS), "schema/parser drift in step kinds"
    schemas = {}
    for kind, body in bodies.items():
        extra = {key: step_id for key in b.STEP_EXTRA_KEYS.get(kind, ())}
        schemas[kind] = {
            "type": "object",
            "properties": {"id": step_id, kind: body, **extra},
            "required": [kind],
            "additionalProperties": False,
        }
    return schemas


def workflow_schema() -> JSONSchema:
    steps = _step_schemas()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nurture workflow",
        **_object(
            b.WORKFLOW_KEYS,
            {
                "name": NAME,
                "description": {"type": "string"},
                "enroll": _object(
                    b.ENROLL_KEYS,
                    {
                        "stage": NAME,
                        "event": EVENT_TYPE,
                        "when": EXPRESSION,
                        "match": EXPRESSION,
                        "segment": NAME,
                    },
                    oneOf=[
                        {"required": ["stage"]},
                        {"required": ["event"]},
                        {"required": ["when"]},
                        {"required": ["segment"]},
                    ],
                ),
                "reenroll": {
                    "anyOf": [
                        {"enum": list(b.REENROLL_MODES)},
                        _object(b.REENROLL_KEYS, {"after": DURATION}, required=["after"]),
                    ]
                },
                "exit": _object(b.EXIT_KEYS, {"when": EXPRESSION}, required=["when"]),
                "holdout": {
                    "type": "string",
                    "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$",
                    "description": "The share of enrolled contacts kept unemailed, e.g. 10%.",
                },
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"anyOf": [{"const": "exit"}, *steps.values()]},
                },
            },
            required=["name", "enroll", "steps"],
        ),
    }


SCHEMAS = {"config": config_schema, "workflow": workflow_schema}
