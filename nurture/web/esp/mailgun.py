"""``mailgun``: Mailgun's JSON event webhooks.

``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``,
the signature being the hex HMAC-SHA256 of timestamp + token with
NURTURE_MAILGUN_SIGNING_KEY. The signature does not cover `event-data`, so a
token is good once: stale timestamps (more than 5 minutes off) are refused,
and a token already accepted by any of our web processes (the
`webhook_replays` table) is a 401. Matched by `user-variables.nurture_send_id`
(every email carries `X-Mailgun-Variables`) or the Message-ID.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.events import EventType
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    ProviderEvent,
    Receipt,
    Replay,
    hex_equal,
    json_object,
    moment,
    provider_id,
    send_id_in,
    unauthorized,
)

#: How far a Mailgun signature timestamp may be from our clock.
MAX_SKEW = timedelta(minutes=5)


class Mailgun:
    """Mailgun's webhooks, signed with NURTURE_MAILGUN_SIGNING_KEY; stale or replays refused."""

    plain_text: ClassVar[bool] = False

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        key = context.settings.mailgun_signing_key
        if not key:
            raise unauthorized(
                "Mailgun webhooks are refused: NURTURE_MAILGUN_SIGNING_KEY is not set"
            )
        data = json_object(body)
        signature = data.get("signature")
        if not isinstance(signature, Mapping):
            raise unauthorized("no Mailgun signature in the body")
        timestamp, token = signature.get("timestamp"), signature.get("token")
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 12:
            raise unauthorized("bad Mailgun signature timestamp")
        if not isinstance(token, str) or not token or len(token) > 200 or value_problem(token):
            raise unauthorized("bad Mailgun signature token")
        expected = hmac.new(
            key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
        ).hexdigest()
        if not hex_equal(expected, signature.get("signature")):
            raise unauthorized("bad Mailgun signature")
        # Compared as numbers: a signed 12-digit timestamp is no datetime (year 33658).
        if abs(int(timestamp) - clock.now().timestamp()) > MAX_SKEW.total_seconds():
            raise unauthorized("stale Mailgun signature (timestamp more than 5 minutes off)")
        return Receipt(
            [self._event(data.get("event-data"))],
            replay=Replay(f"mailgun:{token}", 2 * MAX_SKEW, refuse=True),
        )

    @staticmethod
    def _event(data: Any) -> ProviderEvent:
        if not isinstance(data, Mapping):
            return ProviderEvent(problem="no 'event-data' object")
        problem = value_problem(data)
        if problem:
            return ProviderEvent(problem=problem)
        event_id = provider_id("mailgun", data.get("id"))
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
        send_id = send_id_in(data.get("user-variables"))
        message = data.get("message")
        headers = message.get("headers") if isinstance(message, Mapping) else None
        message_id = headers.get("message-id") if isinstance(headers, Mapping) else None
        at = moment(data.get("timestamp")) or clock.now()
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
