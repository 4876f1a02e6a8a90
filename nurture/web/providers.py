"""ESP webhook formats, normalised at the edge into our own event types.

Each provider authenticates a request in its own way and turns its payload
into `ProviderEvent`s through a literal mapping to our vocabulary
(`email.delivered`, `email.bounced` with `bounce: hard|soft`,
`email.complained`, `email.unsubscribed`); everything else it reports is
marked ignored, not guessed at. Our event id derives from the provider's own
event id, so a provider retrying a webhook records nothing twice; the raw
payload is kept with the event.

- ``generic``: ``{"events": [{"id", "type", "send_id", "message_id", "bounce",
  "at"}]}``, signed ``X-Nurture-Signature: sha256=<hex HMAC-SHA256 of the raw
  body>`` with NURTURE_WEBHOOK_SECRET. For a relay of our own, or a small
  adapter in front of any ESP.
- ``mailgun``: Mailgun's JSON webhooks, ``{"signature": {"timestamp", "token",
  "signature"}, "event-data": {...}}``, the signature being the hex
  HMAC-SHA256 of timestamp + token with NURTURE_MAILGUN_SIGNING_KEY. Stale
  timestamps (more than 5 minutes off) and tokens already accepted by this
  process are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fastapi import HTTPException
from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.events import EventType
from nurture.web.bodies import MAX_ITEMS, parse_json
from nurture.web.context import WebContext

#: How far a Mailgun signature timestamp may be from our clock.
MAX_SKEW = timedelta(minutes=5)


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


@dataclass
class Receipt:
    """What a provider made of one webhook request: its events, and what to run once recorded."""

    events: list[ProviderEvent]
    #: Run once the events are safely recorded (e.g. remember a signature token).
    on_success: Callable[[], None] | None = None


class Provider(Protocol):
    """An ESP's webhook format: authenticates a request and normalises its body into a `Receipt`."""

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt: ...


def _hex_equal(expected: str, given: object) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(
        expected.encode("ascii"), given.strip().lower().encode("utf-8", "surrogatepass")
    )


def _unauthorized(reason: str) -> WebhookRefused:
    return WebhookRefused(401, reason)


def _moment(value: object) -> datetime | None:
    """A provider's time (ISO 8601 or epoch seconds), never later than now."""
    now = clock.now()
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        moment = clock.as_utc(moment)
    return None if moment is None else min(moment, now)


def _provider_id(provider: str, value: object) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > 150:
        return None
    if value_problem(value):
        return None
    return f"{provider}:{value.strip()}"


# --- generic --------------------------------------------------------------------

_GENERIC_TYPES = {
    "delivered": EventType.EMAIL_DELIVERED,
    "bounced": EventType.EMAIL_BOUNCED,
    "complained": EventType.EMAIL_COMPLAINED,
    "unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
}


class Generic:
    """The `generic` webhook: our own format, signed with NURTURE_WEBHOOK_SECRET."""

    header = "x-nurture-signature"

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        secret = context.settings.webhook_secret
        if not secret:
            raise _unauthorized("webhooks are refused: NURTURE_WEBHOOK_SECRET is not set")
        signature = headers.get(self.header, "")
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        scheme, _, given = signature.partition("=")
        if scheme.strip().lower() != "sha256" or not _hex_equal(expected, given):
            raise _unauthorized(
                "bad or missing X-Nurture-Signature (sha256=<hex HMAC of the body>)"
            )
        data = _json_object(body)
        events = data.get("events")
        if not isinstance(events, list):
            raise WebhookRefused(400, 'expected {"events": [...]}')
        if len(events) > MAX_ITEMS:
            raise WebhookRefused(400, f"at most {MAX_ITEMS} events per request")
        return Receipt([self._event(item) for item in events])

    @staticmethod
    def _event(item: Any) -> ProviderEvent:
        if not isinstance(item, Mapping):
            return ProviderEvent(problem="an event must be a JSON object", raw=item)
        problem = value_problem(item)
        if problem:
            return ProviderEvent(problem=problem)
        event_id = _provider_id("generic", item.get("id"))
        name = item.get("type")
        kind = _GENERIC_TYPES.get(name) if isinstance(name, str) else None
        at = _moment(item["at"]) if "at" in item else clock.now()
        properties: dict[str, Any] = {"provider": "generic"}
        reason = None
        if event_id is None:
            reason = (
                "'id' (the provider's event id) is required: a string of at most 150 characters"
            )
        elif kind is None:
            reason = f"unknown type {name!r} (expected one of {', '.join(_GENERIC_TYPES)})"
        elif at is None:
            reason = f"invalid time {item.get('at')!r} (ISO 8601 with a timezone expected)"
        elif kind == EventType.EMAIL_BOUNCED:
            if item.get("bounce") not in ("hard", "soft"):
                reason = "a bounce needs 'bounce': hard or soft"
            properties["bounce"] = item.get("bounce")
        message_id = item.get("message_id")
        return ProviderEvent(
            id=event_id,
            type=kind,
            send_id=item.get("send_id"),
            message_id=message_id if isinstance(message_id, str) else None,
            at=at,
            properties=properties,
            raw=dict(item),
            problem=reason,
        )


# --- Mailgun --------------------------------------------------------------------


class Mailgun:
    """Mailgun's webhooks, signed with NURTURE_MAILGUN_SIGNING_KEY; stale or replays refused."""

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        key = context.settings.mailgun_signing_key
        if not key:
            raise _unauthorized(
                "Mailgun webhooks are refused: NURTURE_MAILGUN_SIGNING_KEY is not set"
            )
        data = _json_object(body)
        signature = data.get("signature")
        if not isinstance(signature, Mapping):
            raise _unauthorized("no Mailgun signature in the body")
        timestamp, token = signature.get("timestamp"), signature.get("token")
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 12:
            raise _unauthorized("bad Mailgun signature timestamp")
        if not isinstance(token, str) or not token or len(token) > 200 or value_problem(token):
            raise _unauthorized("bad Mailgun signature token")
        expected = hmac.new(
            key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
        ).hexdigest()
        if not _hex_equal(expected, signature.get("signature")):
            raise _unauthorized("bad Mailgun signature")
        # Compared as numbers: a signed 12-digit timestamp is no datetime (year 33658).
        if abs(int(timestamp) - clock.now().timestamp()) > MAX_SKEW.total_seconds():
            raise _unauthorized("stale Mailgun signature (timestamp more than 5 minutes off)")
        seen = context.mailgun_tokens
        if token in seen:
            raise _unauthorized("replayed Mailgun signature token")
        return Receipt([self._event(data.get("event-data"))], on_success=lambda: seen.add(token))

    @staticmethod
    def _event(data: Any) -> ProviderEvent:
        if not isinstance(data, Mapping):
            return ProviderEvent(problem="no 'event-data' object")
        problem = value_problem(data)
        if problem:
            return ProviderEvent(problem=problem)
        event_id = _provider_id("mailgun", data.get("id"))
        name = data.get("event")
        properties: dict[str, Any] = {"provider": "mailgun"}
        kind: str | None = None
        ignore = None
        if name == "delivered":
            kind = EventType.EMAIL_DELIVERED
        elif name == "failed" and data.get("severity") == "temporary":
            # Mailgun reports every retry of one message as a temporary failure
            # (`delivery-status.retry-seconds`) and retries for hours: not a bounce.
            # If it gives up, a permanent failure follows.
            ignore = "a Mailgun temporary failure is a retry, not a bounce"
        elif name == "failed":
            kind = EventType.EMAIL_BOUNCED
            severity = data.get("severity")
            properties["bounce"] = "hard" if severity == "permanent" else "soft"
            if isinstance(data.get("reason"), str):
                properties["reason"] = data["reason"]
            status = data.get("delivery-status")
            if isinstance(status, Mapping) and isinstance(status.get("code"), int):
                properties["code"] = status["code"]
        elif name == "complained":
            kind = EventType.EMAIL_COMPLAINED
        elif name == "unsubscribed":
            kind = EventType.EMAIL_UNSUBSCRIBED
        else:
            ignore = (
                f"Mailgun event {name!r} is not recorded (nurture tracks opens and clicks itself)"
            )
        variables = data.get("user-variables")
        send_id = None
        if isinstance(variables, Mapping):
            send_id = next(
                (
                    variables[k]
                    for k in ("nurture_send_id", "nurture-send-id", "send_id")
                    if k in variables
                ),
                None,
            )
        message = data.get("message")
        headers = message.get("headers") if isinstance(message, Mapping) else None
        message_id = headers.get("message-id") if isinstance(headers, Mapping) else None
        at = _moment(data.get("timestamp")) or clock.now()
        return ProviderEvent(
            id=event_id,
            type=kind,
            send_id=send_id,
            message_id=message_id if isinstance(message_id, str) else None,
            at=at,
            properties=properties,
            raw=dict(data),
            problem=None if event_id else "'event-data.id' is missing",
            ignore=ignore,
        )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = parse_json(body)
    except HTTPException as exc:
        raise WebhookRefused(400, str(exc.detail)) from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "expected a JSON object")
    return data


PROVIDERS: dict[str, Provider] = {"generic": Generic(), "mailgun": Mailgun()}
