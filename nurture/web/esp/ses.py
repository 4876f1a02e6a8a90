"""``ses``: Amazon SES notifications and event publishing, delivered by Amazon SNS.

SNS posts JSON as text/plain, one message per post, signed (see `esp.sns`).
Only the topics in NURTURE_SES_TOPIC_ARNS are read (``*``: any): a signed
SNS message proves AWS sent it, not that it is our topic; without the
setting every post is refused. Message types:

- SubscriptionConfirmation: confirmed by fetching its SubscribeURL, if that is
  SNS's own ``https://sns.<region>.amazonaws.com/?…``.
- Notification: its `Message` is SES's JSON (`eventType` for event
  publishing, `notificationType` for notifications): Bounce (Permanent: hard,
  Transient or Undetermined: soft), Complaint, Delivery; the rest (opens,
  clicks, sends, delivery delays…) is ignored.
- UnsubscribeConfirmation: logged, nothing recorded.

Our event id is the SNS MessageId, and a message seen before (by any
process) is answered 200 with nothing done again. Matched by our
`X-Nurture-Send-Id` in `mail.headers` (or a `nurture_send_id` message tag),
else the Message-ID.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from starlette.datastructures import Headers

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.events import EventType
from nurture.web.context import WebContext
from nurture.web.esp.base import (
    SEND_ID_KEYS,
    ProviderEvent,
    Receipt,
    Replay,
    WebhookRefused,
    json_object,
    moment,
    provider_id,
    unauthorized,
)
from nurture.web.esp.sns import SnsRefused, is_sns_url

log = logging.getLogger("nurture.web")

#: How long an SNS message id is remembered (SNS retries for an hour at most).
REMEMBER = timedelta(days=2)
_SEND_ID_HEADER = "x-nurture-send-id"
_TYPES = {
    "Bounce": EventType.EMAIL_BOUNCED,
    "Complaint": EventType.EMAIL_COMPLAINED,
    "Delivery": EventType.EMAIL_DELIVERED,
}
_BOUNCES = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}
_IGNORED = {
    "DeliveryDelay": "an SES delivery delay is a retry, not a bounce",
    "Open": "nurture tracks opens itself",
    "Click": "nurture tracks clicks itself",
}
_VALIDATED = "Successfully validated SNS topic for Amazon SES event publishing."


class AmazonSes:
    """Amazon SES through SNS: signatures checked, topics in NURTURE_SES_TOPIC_ARNS only."""

    plain_text: ClassVar[bool] = True

    def receive(self, body: bytes, headers: Headers, context: WebContext) -> Receipt:
        topics = context.settings.ses_topic_arn_list
        if not topics:
            raise unauthorized("Amazon SES webhooks are refused: NURTURE_SES_TOPIC_ARNS is not set")
        message = json_object(body)
        kind = message.get("Type")
        declared = headers.get("x-amz-sns-message-type")
        if declared is not None and declared != kind:
            raise WebhookRefused(400, "x-amz-sns-message-type does not match the message's Type")
        try:
            context.sns.verify(message, clock.now())
        except SnsRefused as exc:
            raise unauthorized(str(exc)) from None
        topic = str(message.get("TopicArn"))
        if "*" not in topics and topic not in topics:
            raise unauthorized(f"SNS topic {topic[:200]!r} is not in NURTURE_SES_TOPIC_ARNS")
        message_id = message.get("MessageId")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= 100:
            raise WebhookRefused(400, "the SNS message has no MessageId")
        replay = Replay(f"ses:{message_id}", REMEMBER, refuse=False)
        if kind == "SubscriptionConfirmation":
            self._confirm(message, context)
            return Receipt([], replay=replay)
        if kind == "UnsubscribeConfirmation":
            log.warning("SNS topic %s unsubscribed this endpoint", topic)
            return Receipt([ProviderEvent(ignore="an SNS unsubscribe confirmation")], replay=replay)
        return Receipt([self._event(message)], replay=replay)

    @staticmethod
    def _confirm(message: Mapping[str, Any], context: WebContext) -> None:
        url = message.get("SubscribeURL")
        if not is_sns_url(url, pem=False):
            raise WebhookRefused(
                400, "SubscribeURL is not https://sns.<region>.amazonaws.com/?Action=…"
            )
        try:
            context.sns.fetch(str(url))
        except (httpx.HTTPError, OSError) as exc:
            raise WebhookRefused(502, f"could not confirm the SNS subscription: {exc}") from None
        log.info("confirmed the SNS subscription to %s", message.get("TopicArn"))

    @staticmethod
    def _event(message: Mapping[str, Any]) -> ProviderEvent:
        text = message.get("Message")
        if text == _VALIDATED:
            return ProviderEvent(ignore="SES validated the topic")
        try:
            data = json.loads(str(text))
        except ValueError:
            return ProviderEvent(problem="the SNS Message is not SES's JSON", raw=text)
        if not isinstance(data, Mapping):
            return ProviderEvent(problem="the SNS Message is not SES's JSON", raw=text)
        problem = value_problem(data)
        if problem:
            return ProviderEvent(problem=problem)
        name = data.get("eventType") or data.get("notificationType")
        kind = _TYPES.get(name) if isinstance(name, str) else None
        detail = data.get(str(name).lower()) if kind else None
        detail = detail if isinstance(detail, Mapping) else {}
        properties: dict[str, Any] = {"provider": "ses"}
        if kind == EventType.EMAIL_BOUNCED:
            properties["bounce"] = _BOUNCES.get(str(detail.get("bounceType")), "soft")
            for field in ("bounceType", "bounceSubType"):
                if isinstance(detail.get(field), str):
                    properties[field] = detail[field]
        elif kind == EventType.EMAIL_COMPLAINED and isinstance(
            detail.get("complaintFeedbackType"), str
        ):
            properties["complaintFeedbackType"] = detail["complaintFeedbackType"]
        mail = data.get("mail")
        mail = mail if isinstance(mail, Mapping) else {}
        return ProviderEvent(
            id=provider_id("ses", message.get("MessageId")),
            type=kind,
            send_id=_send_id(mail),
            message_id=_message_id(mail),
            at=moment(detail.get("timestamp")) or moment(message.get("Timestamp")) or clock.now(),
            properties=properties,
            raw=dict(data),
            ignore=None
            if kind
            else _IGNORED.get(str(name), f"SES event {str(name)[:40]!r} is not recorded"),
        )


def _send_id(mail: Mapping[str, Any]) -> object:
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, Mapping) and str(header.get("name")).lower() == _SEND_ID_HEADER:
            return header.get("value")
    tags = mail.get("tags")
    if isinstance(tags, Mapping):
        for key in SEND_ID_KEYS:
            values = tags.get(key)
            if isinstance(values, list) and values:
                return values[0]
    return None


def _message_id(mail: Mapping[str, Any]) -> str | None:
    common = mail.get("commonHeaders")
    found = common.get("messageId") if isinstance(common, Mapping) else None
    return found if isinstance(found, str) else None
