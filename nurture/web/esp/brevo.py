"""``brevo``: Brevo's transactional webhooks (delivered, bounces, spam, unsubscribed).

Brevo signs nothing: a webhook authenticates with basic auth in its URL or a
bearer token (its `auth` setting); either way the secret is
NURTURE_BREVO_WEBHOOK_TOKEN. One event per post (a list is read too).
Brevo's events have no id of their own: ours is a digest of the event, the
message and its time (`ts_epoch`). Matched by `X-Mailin-custom` (our emails
carry `{"nurture_send_id": …}` in it) or `message-id` (ours).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.events import EventType
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    ProviderEvent,
    Receipt,
    check_token,
    digest_id,
    json_items,
    moment,
    send_id_in,
    unusable,
)

_TYPES: dict[str, tuple[str, str | None]] = {
    "delivered": (EventType.EMAIL_DELIVERED, None),
    "hard_bounce": (EventType.EMAIL_BOUNCED, "hard"),
    "invalid_email": (EventType.EMAIL_BOUNCED, "hard"),
    "soft_bounce": (EventType.EMAIL_BOUNCED, "soft"),
    "spam": (EventType.EMAIL_COMPLAINED, None),
    "complaint": (EventType.EMAIL_COMPLAINED, None),
    "unsubscribed": (EventType.EMAIL_UNSUBSCRIBED, None),
    "unsubscribe": (EventType.EMAIL_UNSUBSCRIBED, None),
}
_IGNORED = {
    "deferred": "a Brevo deferral is a retry, not a bounce",
    "blocked": "Brevo blocked the message itself (its own lists): not a bounce",
    "request": "Brevo's 'request' is not recorded (the send is)",
}


class Brevo:
    """Brevo's webhooks, authenticated with NURTURE_BREVO_WEBHOOK_TOKEN."""

    plain_text: ClassVar[bool] = False

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        check_token(
            headers, context.settings.brevo_webhook_token, "Brevo", "NURTURE_BREVO_WEBHOOK_TOKEN"
        )
        return Receipt([self._event(item) for item in json_items(body, "events")])

    @staticmethod
    def _event(item: Any) -> ProviderEvent:
        refused = unusable(item)
        if refused is not None:
            return refused
        assert isinstance(item, Mapping)
        name = item.get("event")
        kind, bounce = _TYPES.get(name, (None, None)) if isinstance(name, str) else (None, None)
        ignore = None
        if kind is None:
            ignore = _IGNORED.get(str(name)) or (
                f"Brevo event {str(name)[:40]!r} is not recorded "
                "(nurture tracks opens and clicks itself)"
            )
        properties: dict[str, Any] = {"provider": "brevo"}
        if bounce:
            properties["bounce"] = bounce
        if kind is not None and isinstance(item.get("reason"), str):
            properties["reason"] = item["reason"]
        message_id = item.get("message-id")
        # `ts_epoch` (milliseconds) is UTC; `ts` and `date` follow the account's time zone.
        at = moment(item.get("ts_epoch"), milliseconds=True)
        return ProviderEvent(
            id=digest_id(
                "brevo", name, message_id, item.get("email"), item.get("ts_epoch") or item.get("ts")
            ),
            type=kind,
            send_id=custom_send_id(item.get("X-Mailin-custom")),
            message_id=message_id if isinstance(message_id, str) else None,
            at=at or clock.now(),
            properties=properties,
            raw=dict(item),
            ignore=ignore,
        )


def custom_send_id(value: object) -> object:
    """Our send id in the `X-Mailin-custom` Brevo echoes: JSON, or ``nurture_send_id:12``."""
    if not isinstance(value, str) or len(value) > 1000:
        return None
    try:
        found = send_id_in(json.loads(value))
    except ValueError:
        found = None
    if found is None and value.strip().startswith("nurture_send_id:"):
        found = value.strip().removeprefix("nurture_send_id:").strip()
    return found
