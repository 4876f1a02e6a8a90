"""``generic``: our own format, for a relay of our own or a small adapter in front of any ESP.

``{"events": [{"id", "type", "send_id", "message_id", "bounce", "at"}]}``,
signed ``X-Nurture-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with
NURTURE_WEBHOOK_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.events import EventType
from nurture.web.bodies import MAX_ITEMS
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    ProviderEvent,
    Receipt,
    WebhookRefused,
    hex_equal,
    json_object,
    moment,
    provider_id,
    unauthorized,
    unusable,
)

_GENERIC_TYPES = {
    "delivered": EventType.EMAIL_DELIVERED,
    "bounced": EventType.EMAIL_BOUNCED,
    "complained": EventType.EMAIL_COMPLAINED,
    "unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
}


class Generic:
    """The `generic` webhook: our own format, signed with NURTURE_WEBHOOK_SECRET."""

    header = "x-nurture-signature"
    plain_text: ClassVar[bool] = False

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        secret = context.settings.webhook_secret
        if not secret:
            raise unauthorized("webhooks are refused: NURTURE_WEBHOOK_SECRET is not set")
        signature = headers.get(self.header, "")
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        scheme, _, given = signature.partition("=")
        if scheme.strip().lower() != "sha256" or not hex_equal(expected, given):
            raise unauthorized("bad or missing X-Nurture-Signature (sha256=<hex HMAC of the body>)")
        data = json_object(body)
        events = data.get("events")
        if not isinstance(events, list):
            raise WebhookRefused(400, 'expected {"events": [...]}')
        if len(events) > MAX_ITEMS:
            raise WebhookRefused(400, f"at most {MAX_ITEMS} events per request")
        return Receipt([self._event(item) for item in events])

    @staticmethod
    def _event(item: Any) -> ProviderEvent:
        refused = unusable(item)
        if refused is not None:
            return refused
        assert isinstance(item, Mapping)
        event_id = provider_id("generic", item.get("id"))
        name = item.get("type")
        kind = _GENERIC_TYPES.get(name) if isinstance(name, str) else None
        at = moment(item["at"]) if "at" in item else clock.now()
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
