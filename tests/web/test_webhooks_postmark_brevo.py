"""Postmark and Brevo webhooks: shared-secret authentication, their documented payloads."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import nurture.clock as clock
from nurture.web.esp.base import send_id_in
from nurture.web.esp.brevo import custom_send_id
from tests.web.conftest import Web, anne_welcome

TOKEN = "esp-webhook-token-0123"


@pytest.fixture
def esp(web: Web) -> Web:
    web.app.state.nurture.settings = web.settings.model_copy(
        update={"postmark_webhook_token": TOKEN, "brevo_webhook_token": TOKEN}
    )
    return web


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _post(web: Web, provider: str, payload: Any, auth: dict[str, str] | None = None) -> Any:
    headers = auth if auth is not None else _basic("nurture", TOKEN)
    return web.client.post(f"/v1/webhooks/{provider}", json=payload, headers=headers)


# --- Postmark -------------------------------------------------------------------


def _bounce(kind: str, bounce_id: int, **fields: Any) -> dict[str, Any]:
    """Postmark's documented bounce webhook sample."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"a_key": "a_value"},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "Test bounce details",
        "Email": "anne@example.com",
        "From": "sender@example.com",
        "BouncedAt": "2026-11-23T07:58:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Test subject",
        **fields,
    }


def test_postmark_records_are_normalised(esp: Web) -> None:
    anne = esp.send_of(anne_welcome(esp))
    [bob_message] = esp.sent_to("bob@example.com")
    bob = esp.send_of(bob_message)
    meta = {"Metadata": {"nurture_send_id": str(anne.id)}}
    delivery = {
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "anne@example.com",
        "DeliveredAt": "2026-11-23T07:59:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Tag": "welcome-email",
        "ServerID": 23,
        "RecordType": "Delivery",
        "MessageStream": "outbound",
        **meta,
    }
    cases = [
        (delivery, "recorded"),
        (_bounce("SoftBounce", 4323372036854775807, **meta), "recorded"),
        (_bounce("AutoResponder", 43, **meta), "ignored"),
        (
            _bounce(
                "SpamComplaint",
                42,
                RecordType="SpamComplaint",
                Headers=[{"Name": "Message-ID", "Value": bob.message_id}],
            ),
            "recorded",
        ),
        (
            {
                "RecordType": "SubscriptionChange",
                "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                "ServerID": 123456,
                "MessageStream": "outbound",
                "ChangedAt": "2026-11-23T07:59:34.416071Z",
                "Recipient": "anne@example.com",
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
                "Tag": "my-tag",
                **meta,
            },
            "recorded",
        ),
        ({"RecordType": "Open", "MessageID": "x", **meta}, "ignored"),
        (_bounce("HardBounce", 44), "ignored"),  # Postmark's id, no metadata: not ours
    ]
    for payload, status in cases:
        response = _post(esp, "postmark", payload)
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["status"] == status, payload
    kinds = {e.event_id: (e.type, e.properties.get("bounce")) for e in esp.events()}
    assert sorted(kinds.values(), key=str) == sorted(
        [
            ("email.delivered", None),
            ("email.bounced", "soft"),
            ("email.complained", None),
            ("email.unsubscribed", None),
        ],
        key=str,
    )
    assert "postmark:4323372036854775807" in kinds
    [bounce] = esp.events("email.bounced")
    assert bounce.at == clock.as_utc(bounce.at) and bounce.raw["Type"] == "SoftBounce"
    assert esp.contact("anne@example.com").consent_status == "withdrawn"
    assert esp.contact("bob@example.com").suppression_reason == "complained"
    again = _post(esp, "postmark", delivery)
    assert again.json()["items"][0]["status"] == "duplicate"


def test_a_postmark_hard_bounce_suppresses(esp: Web) -> None:
    anne = esp.send_of(anne_welcome(esp))
    payload = _bounce("HardBounce", 7, Metadata={"nurture_send_id": anne.id})
    assert (
        _post(esp, "postmark", payload, {"Authorization": f"Bearer {TOKEN}"}).json()["recorded"]
        == 1
    )
    assert esp.contact("anne@example.com").suppression_reason == "bounced"


# --- Brevo ----------------------------------------------------------------------


def _brevo(event: str, **fields: Any) -> dict[str, Any]:
    """Brevo's documented transactional webhook sample."""
    epoch = int(clock.now().timestamp() * 1000) - 60_000
    return {
        "event": event,
        "email": "anne@example.com",
        "id": 26224,
        "date": "2026-11-23 09:59:00",
        "ts": epoch // 1000,
        "message-id": "<201798300811.5787683@relay.domain.com>",
        "ts_event": epoch // 1000,
        "subject": "Subject Line",
        "tag": '["transactionalTag"]',
        "sending_ip": "185.41.28.109",
        "ts_epoch": epoch,
        "tags": ["myFirstTransactional"],
        **fields,
    }


def test_brevo_events_are_normalised(esp: Web) -> None:
    anne = esp.send_of(anne_welcome(esp))
    [bob_message] = esp.sent_to("bob@example.com")
    bob = esp.send_of(bob_message)
    custom = {"X-Mailin-custom": f'{{"nurture_send_id": "{anne.id}"}}'}
    cases = [
        (_brevo("request", **custom), "ignored"),
        (_brevo("deferred", reason="greylisted", **custom), "ignored"),
        (_brevo("delivered", **custom), "recorded"),
        (_brevo("soft_bounce", reason="mailbox full", **custom), "recorded"),
        (_brevo("opened", **custom), "ignored"),
        (_brevo("spam", **{"message-id": bob.message_id}), "recorded"),
        (_brevo("unsubscribed", **{"X-Mailin-custom": f"nurture_send_id:{anne.id}"}), "recorded"),
        (_brevo("hard_bounce"), "ignored"),  # someone else's message
    ]
    for payload, status in cases:
        response = _post(esp, "brevo", payload, {"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["status"] == status, payload
    kinds = sorted(((e.type, e.properties.get("bounce")) for e in esp.events()), key=str)
    assert kinds == sorted(
        [
            ("email.delivered", None),
            ("email.bounced", "soft"),
            ("email.complained", None),
            ("email.unsubscribed", None),
        ],
        key=str,
    )
    [soft] = esp.events("email.bounced")
    assert soft.properties["reason"] == "mailbox full"
    assert soft.raw["sending_ip"] == "185.41.28.109"
    assert esp.contact("bob@example.com").suppression_reason == "complained"
    again = _post(esp, "brevo", cases[2][0])
    assert again.json()["items"][0]["status"] == "duplicate"


@pytest.mark.parametrize("provider", ["postmark", "brevo"])
@pytest.mark.parametrize(
    "auth", ["none", "wrong bearer", "wrong password", "garbage basic", "token as user", "unset"]
)
def test_bad_postmark_and_brevo_credentials_are_401(esp: Web, provider: str, auth: str) -> None:
    anne = esp.send_of(anne_welcome(esp))
    payload = (
        _bounce("HardBounce", 9, Metadata={"nurture_send_id": anne.id})
        if provider == "postmark"
        else _brevo("hard_bounce", **{"X-Mailin-custom": f"nurture_send_id:{anne.id}"})
    )
    headers = {
        "none": {},
        "wrong bearer": {"Authorization": "Bearer nope"},
        "wrong password": _basic("nurture", "nope"),
        "garbage basic": {"Authorization": "Basic %%%"},
        "token as user": _basic(TOKEN, ""),
        "unset": {"Authorization": f"Bearer {TOKEN}"},
    }[auth]
    if auth == "unset":
        esp.app.state.nurture.settings = esp.settings
    response = _post(esp, provider, payload, headers)
    assert response.status_code == 401
    if auth == "unset":
        assert f"NURTURE_{provider.upper()}_WEBHOOK_TOKEN is not set" in response.json()["detail"]
    assert esp.events() == []
    assert esp.contact("anne@example.com").suppressed_at is None


def test_our_emails_carry_the_send_id_each_esp_echoes(esp: Web) -> None:
    """The headers on the wire, read back the way each provider reports them."""
    message = anne_welcome(esp)
    headers = message.parsed()
    send_id = str(esp.send_of(message).id)
    assert headers["X-Nurture-Send-Id"] == send_id  # Amazon SES: mail.headers
    assert send_id_in(json.loads(headers["X-Mailgun-Variables"])) == send_id
    assert send_id_in(json.loads(headers["X-SMTPAPI"])["unique_args"]) == send_id
    assert headers["X-PM-Metadata-nurture_send_id"] == send_id
    assert custom_send_id(headers["X-Mailin-custom"]) == send_id
