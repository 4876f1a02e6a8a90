"""The HTTP contract's shapes: response models and the documented request bodies.

Request bodies are read by hand (see `bodies`), so their JSON Schemas are
written out here for the OpenAPI document (`/docs`), where client authors and
the schemathesis fuzz tests read them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from nurture.events import EVENT_TYPES


class Problem(BaseModel):
    """A refused request: `detail` says why."""

    detail: str


class EventResult(BaseModel):
    """What became of one event: recorded, a duplicate (id already recorded), or rejected."""

    index: int = Field(description="Position of the event in the request (0-based).")
    id: str | None = Field(description="The event's id, when it had one.")
    status: Literal["recorded", "duplicate", "rejected"]
    reason: str | None = None


class EventsResult(BaseModel):
    """One result per event, in request order, and the counts."""

    recorded: int
    duplicate: int
    rejected: int
    items: list[EventResult]


class ContactResult(BaseModel):
    """What became of one contact: created, updated, unchanged, or rejected with a `reason`."""

    index: int
    email: str | None
    status: Literal["created", "updated", "unchanged", "rejected"]
    reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class ContactsResult(BaseModel):
    """One result per contact, in request order, and the counts."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    items: list[ContactResult]


class WebhookResult(BaseModel):
    """What became of one provider event; `ignored`: not about our emails, or a kind not tracked."""

    index: int
    id: str | None = Field(description="Our event id (derived from the provider's).")
    status: Literal["recorded", "duplicate", "ignored", "rejected"]
    reason: str | None = None


class WebhookResults(BaseModel):
    """One result per provider event, in request order, and the counts."""

    recorded: int
    duplicate: int
    ignored: int
    rejected: int
    items: list[WebhookResult]


class Health(BaseModel):
    """The service's health: `ok`, or `unavailable` when the database cannot be reached."""

    status: Literal["ok", "unavailable"]


#: Text the databases can hold (no NUL), and the same not blank: the API refuses the rest,
#: so the schema says so. A lone surrogate (`"\\ud800"`, no UTF-8 encoding) is refused
#: too, by the validators: a pattern naming the surrogate range reads differently in
#: ECMA-262 (UTF-16 code units: it would refuse every emoji) and in Python, and a client
#: generating from the schema then sent text the server refused.
TEXT_PATTERN = "^[^\\u0000]*$"
NON_BLANK_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "contact"],
    "additionalProperties": False,
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": NON_BLANK_PATTERN,
            "example": "evt-123",
        },
        "type": {
            "description": f"One of {', '.join(EVENT_TYPES)}, or custom.<anything>.",
            "anyOf": [
                {"type": "string", "enum": list(EVENT_TYPES)},
                {"type": "string", "pattern": r"^custom\..+"},
            ],
            "example": "page.visited",
        },
        "at": {"type": "string", "format": "date-time", "example": "2026-11-22T10:00:00Z"},
        "contact": {
            "type": "object",
            "description": 'Either {"email": ...} or {"id": ...}.',
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "email": {"type": "string", "format": "email"},
                "id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            },
        },
        "properties": {"type": "object", "example": {"url": "https://example.com/pricing"}},
    },
}

CONTACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["email"],
    "description": (
        "As a row of `nurture contacts import`: any other key is a custom property. "
        "A field that is null or empty is absent (it never erases what is stored)."
    ),
    "properties": {
        "email": {"type": "string", "format": "email", "example": "anne@example.com"},
        "first_name": {"type": ["string", "null"], "maxLength": 100, "pattern": TEXT_PATTERN},
        "last_name": {"type": ["string", "null"], "maxLength": 100, "pattern": TEXT_PATTERN},
        "company": {"type": ["string", "null"], "maxLength": 200, "pattern": TEXT_PATTERN},
        "stage": {"type": ["string", "null"], "example": "lead"},
        "timezone": {"type": ["string", "null"], "example": "Europe/Paris"},
        "owner": {"type": ["string", "null"], "pattern": TEXT_PATTERN},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "consent": {
            "description": "An object, or just the status (its aliases too: yes, oui, opt-out…).",
            "type": ["object", "string", "null"],
            "properties": {
                "status": {
                    "type": ["string", "null"],
                    "enum": ["granted", "legitimate_interest", "withdrawn", "unknown", None],
                },
                "at": {"type": ["string", "null"], "format": "date-time"},
                "source": {"type": ["string", "null"]},
                "basis": {"type": ["string", "null"]},
                "proof": {},
            },
        },
        "properties": {"type": ["object", "null"]},
    },
}


def one_or_many(schema: dict[str, Any], limit: int) -> dict[str, Any]:
    """An `openapi_extra` request body: one object, or a list of up to `limit`."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            schema,
                            {"type": "array", "items": schema, "minItems": 1, "maxItems": limit},
                        ]
                    }
                }
            },
        }
    }


GENERIC_WEBHOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "description": "The provider's event id."},
                    "type": {
                        "type": "string",
                        "enum": ["delivered", "bounced", "complained", "unsubscribed"],
                    },
                    "send_id": {"type": "string", "description": "Our X-Nurture-Send-Id."},
                    "message_id": {"type": "string", "description": "The Message-ID sent."},
                    "bounce": {"type": "string", "enum": ["hard", "soft"]},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}

MAILGUN_WEBHOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["signature", "event-data"],
    "properties": {
        "signature": {
            "type": "object",
            "required": ["timestamp", "token", "signature"],
            "properties": {
                "timestamp": {"type": "string"},
                "token": {"type": "string"},
                "signature": {"type": "string"},
            },
        },
        "event-data": {
            "type": "object",
            "properties": {
                "event": {"type": "string"},
                "severity": {"type": "string", "enum": ["permanent", "temporary"]},
                "id": {"type": "string"},
                "timestamp": {"type": "number"},
                "message": {"type": "object"},
                "user-variables": {"type": "object"},
            },
        },
    },
}

WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The provider's own format: `generic` or `mailgun` (below); `sendgrid` (a list of "
            "SendGrid events), `postmark` and `brevo` (one event), `ses` (an Amazon SNS "
            "message, posted as text/plain)."
        ),
        "content": {
            "application/json": {
                "schema": {"anyOf": [GENERIC_WEBHOOK_SCHEMA, MAILGUN_WEBHOOK_SCHEMA]}
            }
        },
    }
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for refusals that carry a `Problem`."""
    return {code: {"model": Problem} for code in codes}
