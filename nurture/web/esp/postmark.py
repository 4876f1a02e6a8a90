"""``postmark``: Postmark's webhooks (Delivery, Bounce, SpamComplaint, SubscriptionChange).

Postmark signs nothing: its webhook URL carries basic auth credentials, or
the webhook sends a custom header; either way the secret is
NURTURE_POSTMARK_WEBHOOK_TOKEN (the basic auth password, or
`Authorization: Bearer <token>`). One event per post. Matched by the
metadata `nurture_send_id` (our emails carry `X-PM-Metadata-nurture_send_id`)
or the Message-ID.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.events import EventType
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    ProviderEvent,
    Receipt,
    check_token,
    digest_id,
    json_object,
    moment,
    provider_id,
    send_id_in,
)

#: Bounce `Type` → ours; the types not here (auto-responders, address changes,
#: challenge verifications, open relay tests, template failures…) are ignored.
_BOUNCES: dict[str, tuple[str, str | None]] = {
    "HardBounce": (EventType.EMAIL_BOUNCED, "hard"),
    "BadEmailAddress": (EventType.EMAIL_BOUNCED, "hard"),
    "SoftBounce": (EventType.EMAIL_BOUNCED, "soft"),
    "Transient": (EventType.EMAIL_BOUNCED, "soft"),
    "DnsError": (EventType.EMAIL_BOUNCED, "soft"),
    "Blocked": (EventType.EMAIL_BOUNCED, "soft"),
    "SpamNotification": (EventType.EMAIL_BOUNCED, "soft"),
    "DMARCPolicy": (EventType.EMAIL_BOUNCED, "soft"),
    "SpamComplaint": (EventType.EMAIL_COMPLAINED, None),
    "Unsubscribe": (EventType.EMAIL_UNSUBSCRIBED, None),
}
#: A SubscriptionChange that stops sending, by its `SuppressionReason`.
_SUPPRESSIONS: dict[str, tuple[str, str | None]] = {
    "HardBounce": (EventType.EMAIL_BOUNCED, "hard"),
    "SpamComplaint": (EventType.EMAIL_COMPLAINED, None),
    "ManualSuppression": (EventType.EMAIL_UNSUBSCRIBED, None),
}


class Postmark:
    """Postmark's webhooks, authenticated with NURTURE_POSTMARK_WEBHOOK_TOKEN."""

    plain_text: ClassVar[bool] = False

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        check_token(
            headers,
            context.settings.postmark_webhook_token,
            "Postmark",
            "NURTURE_POSTMARK_WEBHOOK_TOKEN",
        )
        return Receipt([self._event(json_object(body))])

    @staticmethod
    def _event(item: Mapping[str, Any]) -> ProviderEvent:
        problem = value_problem(item)
        if problem:
            return ProviderEvent(problem=problem)
        record = item.get("RecordType")
        kind: str | None = None
        bounce: str | None = None
        ignore = None
        event_id = None
        if record == "Delivery":
            kind = EventType.EMAIL_DELIVERED
            event_id = digest_id("postmark", record, item.get("MessageID"), item.get("Recipient"))
        elif record in ("Bounce", "SpamComplaint"):
            kind, bounce = _BOUNCES.get(str(item.get("Type")), (None, None))
            if kind is None:
                ignore = f"a Postmark {str(item.get('Type'))[:40]!r} bounce is not recorded"
            event_id = provider_id("postmark", item.get("ID"))
        elif record == "SubscriptionChange":
            if item.get("SuppressSending") is True:
                kind, bounce = _SUPPRESSIONS.get(
                    str(item.get("SuppressionReason")), (EventType.EMAIL_UNSUBSCRIBED, None)
                )
            else:
                ignore = "a Postmark reactivation does not subscribe anyone again"
            event_id = digest_id(
                "postmark",
                record,
                item.get("MessageID"),
                item.get("Recipient"),
                item.get("ChangedAt"),
            )
        else:
            ignore = (
                f"Postmark record {str(record)[:40]!r} is not recorded "
                "(nurture tracks opens and clicks itself)"
            )
        properties: dict[str, Any] = {"provider": "postmark"}
        if bounce:
            properties["bounce"] = bounce
        if kind is not None:
            for field in ("Type", "Description", "SuppressionReason"):
                if isinstance(item.get(field), str):
                    properties[field.lower()] = item[field]
        return ProviderEvent(
            id=event_id,
            type=kind,
            send_id=send_id_in(item.get("Metadata")),
            message_id=_message_id(item),
            at=moment(item.get("DeliveredAt") or item.get("BouncedAt") or item.get("ChangedAt"))
            or clock.now(),
            properties=properties,
            raw=dict(item),
            problem=None if event_id or ignore else "the Postmark bounce 'ID' is missing",
            ignore=ignore,
        )


def _message_id(item: Mapping[str, Any]) -> str | None:
    """Our Message-ID if Postmark shows the headers, else Postmark's own MessageID."""
    headers = item.get("Headers")
    if isinstance(headers, list):
        for header in headers:
            if (
                isinstance(header, Mapping)
                and str(header.get("Name")).lower() == "message-id"
                and isinstance(header.get("Value"), str)
            ):
                return str(header["Value"])
    found = item.get("MessageID")
    return found if isinstance(found, str) else None
