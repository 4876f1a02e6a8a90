"""``sendgrid``: Twilio SendGrid's Event Webhook, signed (ECDSA P-256, SHA-256).

SendGrid posts a JSON list of events and signs the timestamp header followed
by the raw body (`X-Twilio-Email-Event-Webhook-Timestamp`,
`X-Twilio-Email-Event-Webhook-Signature`: base64 DER ECDSA); the public key
is NURTURE_SENDGRID_VERIFICATION_KEY (base64 DER, as SendGrid shows it).
The signature covers the whole body, so a post seen before (by any process)
is answered 200 with nothing done again; SendGrid documents no freshness
window and retries failed posts for a day, so old timestamps are not refused.
Events are matched by our custom arg `nurture_send_id` (the `X-SMTPAPI`
header's `unique_args`) or `smtp-id` (our Message-ID).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.events import EventType
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    ProviderEvent,
    Receipt,
    Replay,
    WebhookRefused,
    json_items,
    moment,
    provider_id,
    send_id_in,
    unauthorized,
    unusable,
)

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
#: How long a post's digest is remembered (SendGrid retries for 24 hours).
REMEMBER = timedelta(days=2)

_TYPES = {
    "delivered": EventType.EMAIL_DELIVERED,
    "bounce": EventType.EMAIL_BOUNCED,
    "dropped": EventType.EMAIL_BOUNCED,
    "spamreport": EventType.EMAIL_COMPLAINED,
    "unsubscribe": EventType.EMAIL_UNSUBSCRIBED,
    "group_unsubscribe": EventType.EMAIL_UNSUBSCRIBED,
}
#: A dropped message: SendGrid did not send it because of its own lists.
_DROPPED = {
    "Bounced Address": (EventType.EMAIL_BOUNCED, "hard"),
    "Invalid": (EventType.EMAIL_BOUNCED, "hard"),
    "Spam Reporting Address": (EventType.EMAIL_COMPLAINED, None),
    "Unsubscribed Address": (EventType.EMAIL_UNSUBSCRIBED, None),
}
_IGNORED = {
    "deferred": "a SendGrid deferral is a retry, not a bounce",
    "processed": "SendGrid's 'processed' is not recorded (the send is)",
}


@lru_cache(maxsize=8)
def _public_key(key: str) -> ec.EllipticCurvePublicKey:
    loaded = load_der_public_key(base64.b64decode(key))
    assert isinstance(loaded, ec.EllipticCurvePublicKey)  # checked by the settings
    return loaded


class SendGrid:
    """SendGrid's Signed Event Webhook, verified with NURTURE_SENDGRID_VERIFICATION_KEY."""

    plain_text: ClassVar[bool] = False

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        key = context.settings.sendgrid_verification_key
        if not key:
            raise unauthorized(
                "SendGrid webhooks are refused: NURTURE_SENDGRID_VERIFICATION_KEY is not set"
            )
        timestamp = headers.get(TIMESTAMP, "")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise unauthorized(f"bad or missing {TIMESTAMP} (epoch seconds)")
        try:
            signature = base64.b64decode(headers.get(SIGNATURE, ""), validate=True)
            _public_key(key).verify(
                signature, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
            )
        except (binascii.Error, ValueError, InvalidSignature):
            raise unauthorized(f"bad or missing {SIGNATURE}") from None
        items = json_items(body, "events")
        if not items or not all(isinstance(i, Mapping) for i in items[:1]):
            raise WebhookRefused(400, "expected a JSON list of SendGrid events")
        digest = hashlib.sha256(timestamp.encode("ascii") + b"." + body).hexdigest()
        return Receipt(
            [self._event(item) for item in items],
            replay=Replay(f"sendgrid:{digest}", REMEMBER, refuse=False),
        )

    @staticmethod
    def _event(item: Any) -> ProviderEvent:
        refused = unusable(item)
        if refused is not None:
            return refused
        assert isinstance(item, Mapping)
        name = item.get("event")
        kind = _TYPES.get(name) if isinstance(name, str) else None
        properties: dict[str, Any] = {"provider": "sendgrid"}
        ignore = None
        if name == "bounce":
            # `type`: bounce (the address is refused) or blocked (the server refused us)
            properties["bounce"] = "soft" if item.get("type") == "blocked" else "hard"
        elif name == "dropped":
            kind, bounce = _DROPPED.get(str(item.get("reason")), (None, None))
            if bounce:
                properties["bounce"] = bounce
            if kind is None:
                ignore = f"a SendGrid drop for {str(item.get('reason'))[:100]!r} is not recorded"
        elif kind is None:
            ignore = _IGNORED.get(str(name)) or (
                f"SendGrid event {str(name)[:40]!r} is not recorded "
                "(nurture tracks opens and clicks itself)"
            )
        for field in ("reason", "status", "type", "asm_group_id"):
            value = item.get(field)
            if kind is not None and isinstance(value, str | int) and not isinstance(value, bool):
                properties[field] = value
        event_id = provider_id("sendgrid", item.get("sg_event_id"))
        message_id = item.get("smtp-id")
        return ProviderEvent(
            id=event_id,
            type=kind,
            send_id=send_id_in(item) or send_id_in(item.get("unique_args")),
            message_id=message_id if isinstance(message_id, str) else None,
            at=moment(item.get("timestamp")) or clock.now(),
            properties=properties,
            raw=dict(item),
            problem=None if event_id or ignore else "'sg_event_id' is missing",
            ignore=ignore,
        )
