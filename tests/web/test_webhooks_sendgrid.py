"""SendGrid's Signed Event Webhook: ECDSA signatures with a local key, its documented events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import nurture.clock as clock
from tests.web.conftest import Web, anne_welcome

PRIVATE = ec.generate_private_key(ec.SECP256R1())
#: What SendGrid's settings page shows: the public key, base64 DER.
VERIFICATION_KEY = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def sg(web: Web) -> Web:
    context = web.app.state.nurture
    context.settings = web.settings.model_copy(
        update={"sendgrid_verification_key": VERIFICATION_KEY}
    )
    return web


def _post(
    web: Web,
    events: list[Any],
    *,
    key: ec.EllipticCurvePrivateKey = PRIVATE,
    timestamp: str | None = None,
    body: bytes | None = None,
) -> Any:
    body = body if body is not None else json.dumps(events).encode()
    timestamp = timestamp or str(int(clock.now().timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return web.client.post("/v1/webhooks/sendgrid", content=body, headers=headers)


def _event(name: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """SendGrid's documented sample event, with our custom arg."""
    return {
        "email": "anne@example.com",
        "timestamp": int(clock.now().timestamp()) - 60,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": name,
        "category": "cat facts",
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


def test_sendgrid_events_are_normalised(sg: Web) -> None:
    anne = sg.send_of(anne_welcome(sg))
    [bob_message] = sg.sent_to("bob@example.com")
    bob = sg.send_of(bob_message)
    mine = {"nurture_send_id": str(anne.id)}
    events = [
        _event("processed", "p-1", **mine),
        _event("deferred", "df-1", response="400 try again later", attempt="5", **mine),
        _event("delivered", "d-1", response="250 OK", **mine),
        _event("open", "o-1", useragent="Mozilla/4.0", **mine),
        _event("bounce", "b-1", reason="421 too many", status="4.0.0", type="blocked", **mine),
        _event("dropped", "dr-1", reason="Spam Content (if spam checker app enabled)", **mine),
        _event("spamreport", "s-1", **{"smtp-id": bob.message_id}),
        _event("group_unsubscribe", "u-1", asm_group_id=10, **mine),
        _event("delivered", "x-1", **{"smtp-id": "<someone-else@example.org>"}),
        _event("delivered", None, **mine),
    ]
    response = _post(sg, events)
    assert response.status_code == 200, response.text
    statuses = [i["status"] for i in response.json()["items"]]
    assert statuses == [
        "ignored",
        "ignored",
        "recorded",
        "ignored",
        "recorded",
        "ignored",
        "recorded",
        "recorded",
        "ignored",
        "rejected",
    ]
    recorded = {e.event_id: e for e in sg.events()}
    assert {k: (e.type, e.properties.get("bounce")) for k, e in recorded.items()} == {
        "sendgrid:d-1": ("email.delivered", None),
        "sendgrid:b-1": ("email.bounced", "soft"),
        "sendgrid:s-1": ("email.complained", None),
        "sendgrid:u-1": ("email.unsubscribed", None),
    }
    assert recorded["sendgrid:b-1"].raw["reason"] == "421 too many"
    assert recorded["sendgrid:s-1"].contact_id == bob.contact_id
    assert recorded["sendgrid:b-1"].source == "webhook:sendgrid"
    assert sg.contact("anne@example.com").consent_status == "withdrawn"
    assert sg.contact("bob@example.com").suppression_reason == "complained"


def test_a_sendgrid_bounce_is_hard_and_a_deferral_is_nothing(sg: Web) -> None:
    anne = sg.send_of(anne_welcome(sg))
    mine = {"smtp-id": anne.message_id}
    for n in range(3):
        _post(sg, [_event("deferred", f"df-{n}", **mine)])
    assert sg.contact("anne@example.com").soft_bounces == 0
    response = _post(
        sg, [_event("bounce", "b-1", reason="500 unknown recipient", type="bounce", **mine)]
    )
    assert response.json()["recorded"] == 1
    [bounce] = sg.events("email.bounced")
    assert bounce.properties["bounce"] == "hard"
    assert sg.contact("anne@example.com").suppression_reason == "bounced"


def test_a_repeated_sendgrid_post_is_done_once(sg: Web) -> None:
    anne = sg.send_of(anne_welcome(sg))
    events = [_event("deferred", "df-1", nurture_send_id=anne.id)]
    body, timestamp = json.dumps(events).encode(), str(int(clock.now().timestamp()))
    first = _post(sg, events, body=body, timestamp=timestamp)
    assert first.json()["items"][0]["status"] == "ignored"
    again = _post(sg, events, body=body, timestamp=timestamp)  # a new ECDSA signature, same post
    assert again.status_code == 200
    assert again.json()["items"][0]["status"] == "duplicate"


@pytest.mark.parametrize(
    "tamper", ["other key", "altered body", "no signature", "garbage", "bad timestamp", "no key"]
)
def test_a_bad_sendgrid_signature_is_401_and_records_nothing(sg: Web, tamper: str) -> None:
    anne = sg.send_of(anne_welcome(sg))
    events = [_event("bounce", "b-1", type="bounce", nurture_send_id=anne.id)]
    body = json.dumps(events).encode()
    timestamp = str(int(clock.now().timestamp()))
    key = ec.generate_private_key(ec.SECP256R1()) if tamper == "other key" else PRIVATE
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    if tamper == "altered body":
        body = body.replace(b'"bounce"', b'"spamreport"', 1)
    elif tamper == "no signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif tamper == "garbage":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64!"
    elif tamper == "bad timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "1e9"
    elif tamper == "no key":
        sg.app.state.nurture.settings = sg.settings
    response = sg.client.post("/v1/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 401
    if tamper == "no key":
        assert "NURTURE_SENDGRID_VERIFICATION_KEY" in response.json()["detail"]
    assert sg.events() == []
