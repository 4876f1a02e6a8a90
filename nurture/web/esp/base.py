"""What every ESP webhook format shares: the normalised event, the receipt, the helpers.

Each provider authenticates a request in its own way and turns its payload
into `ProviderEvent`s through a literal mapping to our vocabulary
(`email.delivered`, `email.bounced` with `bounce: hard|soft`,
`email.complained`, `email.unsubscribed`); everything else it reports is
marked ignored, not guessed at. Our event id derives from the provider's own
event id (or, for providers that have none, a digest of what identifies the
event), so a provider retrying a webhook records nothing twice; the raw
payload is kept with the event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from fastapi import HTTPException
from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.web.bodies import MAX_ITEMS, parse_json
from nurture.web.context import WebContext

#: The keys our emails carry our send id under, in custom args, metadata or variables.
SEND_ID_KEYS = ("nurture_send_id", "nurture-send-id", "send_id")


class WebhookRefused(Exception):
    """The request as a whole is refused (bad signature: 401; bad body: 400)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event, normalised; `problem` or `ignore` say why it is not one of ours."""

    id: str | None = None
    type: str | None = None
    send_id: object = None
    message_id: str | None = None
    at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    raw: Any = None
    problem: str | None = None
    ignore: str | None = None


@dataclass(frozen=True)
class Replay:
    """A signed request's replay key, claimed in the database with its events.

    `refuse`: a second post of the key is a 401 (Mailgun: its signature does not
    cover the events, so a replayed token could carry forged ones); otherwise it
    is answered 200 with nothing done again (the signature covers the whole
    body, and the provider retries what it thinks failed).
    """

    key: str
    ttl: timedelta
    refuse: bool


@dataclass
class Receipt:
    """What a provider made of one webhook request: its events, and what to run once recorded."""

    events: list[ProviderEvent]
    replay: Replay | None = None
    #: Run once the events are safely recorded (e.g. confirm an SNS subscription).
    on_success: Callable[[], None] | None = None


class Provider(Protocol):
    """An ESP's webhook format: authenticates a request and normalises its body into a `Receipt`."""

    #: Whether the provider posts JSON as text/plain (Amazon SNS does).
    plain_text: ClassVar[bool]

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt: ...


def unusable(item: Any) -> ProviderEvent | None:
    """The refusal of an item that is not a JSON object, or holds what the database
    cannot (NUL, ±1e400…); None for one worth reading."""
    if not isinstance(item, Mapping):
        return ProviderEvent(problem="an event must be a JSON object", raw=item)
    problem = value_problem(item)
    return ProviderEvent(problem=problem) if problem else None


def hex_equal(expected: str, given: object) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(
        expected.encode("ascii"), given.strip().lower().encode("utf-8", "surrogatepass")
    )


def unauthorized(reason: str) -> WebhookRefused:
    return WebhookRefused(401, reason)


def moment(value: object, *, milliseconds: bool = False) -> datetime | None:
    """A provider's time (ISO 8601 or epoch seconds), never later than now."""
    now = clock.now()
    found: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            found = datetime.fromtimestamp(value / 1000 if milliseconds else value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if found.tzinfo is None:
            return None
        found = clock.as_utc(found)
    return None if found is None else min(found, now)


def provider_id(provider: str, value: object) -> str | None:
    """Our event id for the provider's own event id (a string, or an integer)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**40:
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 150:
        return None
    if value_problem(value):
        return None
    return f"{provider}:{value.strip()}"


def digest_id(provider: str, *parts: object) -> str:
    """An event id for a provider that gives its events none: a digest of what
    identifies the event (its kind, the message, the recipient, the time)."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{provider}:{digest}"


def json_object(body: bytes) -> dict[str, Any]:
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise WebhookRefused(400, "expected a JSON object")
    return data


def json_items(body: bytes, what: str) -> list[Any]:
    """A body of one JSON object or a list of them, as a list (at most MAX_ITEMS)."""
    data = parse_json_body(body)
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_ITEMS:
        raise WebhookRefused(400, f"at most {MAX_ITEMS} {what} per request")
    return items


def parse_json_body(body: bytes) -> Any:
    try:
        return parse_json(body)
    except HTTPException as exc:
        raise WebhookRefused(400, str(exc.detail)) from None


def send_id_in(values: object) -> object:
    """Our send id in a provider's custom args, metadata or variables, if there."""
    if not isinstance(values, Mapping):
        return None
    return next((values[k] for k in SEND_ID_KEYS if k in values), None)


def check_token(headers: Headers, token: str | None, provider: str, setting: str) -> None:
    """A shared-secret webhook: `Authorization: Bearer <token>`, or HTTP basic auth
    with the token as the password (any user name), as the provider's webhook
    settings allow. Without the setting, every request is refused."""
    if not token:
        raise unauthorized(f"{provider} webhooks are refused: {setting} is not set")
    scheme, _, given = headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(given, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        given = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        given = ""
    expected = token.encode("utf-8")
    if not given or not hmac.compare_digest(expected, given.encode("utf-8", "surrogatepass")):
        raise unauthorized(
            f"bad or missing {provider} webhook credentials "
            f"(Authorization: Bearer <{setting}>, or basic auth with it as the password)"
        )
