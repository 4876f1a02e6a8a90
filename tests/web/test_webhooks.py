"""ESP webhooks: signatures, normalisation, matching to our sends, idempotence."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest

import nurture.clock as clock
from tests.web.conftest import MAILGUN_KEY, START, WEBHOOK_SECRET, Web, anne_welcome

# --- generic --------------------------------------------------------------------


def _signed(payload: Any, secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Nurture-Signature": f"sha256={digest}"}


def _generic(web: Web, events: list[Any], secret: str = WEBHOOK_SECRET) -> Any:
    body, headers = _signed({"events": events}, secret)
    return web.client.post("/v1/webhooks/generic", content=body, headers=headers)


def test_a_hard_bounce_is_recorded_for_the_send_and_suppresses_the_contact(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    event = {"id": "b-1", "type": "bounced", "bounce": "hard", "send_id": str(send.id)}
    response = _generic(web, [event])
    assert response.status_code == 200
    assert response.json()["items"] == [
        {"index": 0, "id": "generic:b-1", "status": "recorded", "reason": None}
    ]
    [recorded] = web.events("email.bounced")
    assert recorded.event_id == "generic:b-1"
    assert recorded.contact_id == send.contact_id
    assert recorded.source == "webhook:generic"
    assert recorded.raw == event
    assert recorded.properties == {
        "send_id": send.id,
        "workflow": "lead-nurture",
        "step": send.step,
        "template": "lead/welcome",
        "bounce": "hard",
        "provider": "generic",
    }
    anne = web.contact("anne@example.com")
    assert (anne.suppressed_at is not None, anne.suppression_reason) == (True, "bounced")
    web.at(START + timedelta(days=2, hours=1))
    web.tick()
    assert len(web.sent_to("anne@example.com")) == 1  # no guide after a hard bounce
    assert len(web.sent_to("bob@example.com")) == 2


def test_a_retried_webhook_records_nothing_twice(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    events = [{"id": "d-1", "type": "delivered", "send_id": send.id}]
    assert _generic(web, events).json()["recorded"] == 1
    again = _generic(web, events)
    assert again.status_code == 200
    assert again.json()["items"][0]["status"] == "duplicate"
    assert len(web.events("email.delivered")) == 1


def test_events_match_by_message_id_and_each_type_is_normalised(web: Web) -> None:
    anne = web.send_of(anne_welcome(web))
    [bob_message] = web.sent_to("bob@example.com")
    bob = web.send_of(bob_message)
    assert anne.message_id and anne.message_id.startswith("<")
    events = [
        {"id": "1", "type": "delivered", "message_id": anne.message_id},
        {"id": "2", "type": "bounced", "bounce": "soft", "message_id": anne.message_id[1:-1]},
        {"id": "3", "type": "complained", "send_id": "999999", "message_id": bob.message_id},
        {"id": "4", "type": "unsubscribed", "send_id": anne.id, "at": "2026-11-23T07:00:00Z"},
        {"id": "5", "type": "delivered", "message_id": "<someone-else@example.org>"},
        {"id": "6", "type": "delivered"},
        {"id": "7", "type": "opened", "send_id": anne.id},
        {"type": "delivered", "send_id": anne.id},
        {"id": "9", "type": "bounced", "send_id": anne.id},
        {"id": "10", "type": "delivered", "send_id": anne.id, "at": "last week"},
        "not an object",
    ]
    response = _generic(web, events)
    assert response.status_code == 200
    body = response.json()
    assert [i["status"] for i in body["items"]] == [
        *["recorded"] * 4,
        "ignored",
        "ignored",
        *["rejected"] * 5,
    ]
    assert (body["recorded"], body["ignored"], body["rejected"]) == (4, 2, 5)
    assert "no send matches" in body["items"][4]["reason"]
    assert "unknown type 'opened'" in body["items"][6]["reason"]
    assert "'id'" in body["items"][7]["reason"]
    assert "hard or soft" in body["items"][8]["reason"]
    recorded = {e.event_id: e for e in web.events()}
    assert recorded["generic:2"].properties["bounce"] == "soft"
    assert recorded["generic:3"].contact_id == bob.contact_id
    assert recorded["generic:4"].at == clock.as_utc(START.replace(hour=7))
    assert web.contact("anne@example.com").suppressed_at is None  # a soft bounce
    assert web.contact("anne@example.com").consent_status == "withdrawn"
    assert web.contact("bob@example.com").suppression_reason == "complained"


@pytest.mark.parametrize(
    "tamper",
    ["no header", "wrong secret", "wrong scheme", "altered body", "garbage", "non-ascii"],
)
def test_a_bad_signature_is_401_and_records_nothing(web: Web, tamper: str) -> None:
    send = web.send_of(anne_welcome(web))
    payload = {"events": [{"id": "x", "type": "bounced", "bounce": "hard", "send_id": send.id}]}
    body, headers = _signed(payload, "wrong-secret" if tamper == "wrong secret" else WEBHOOK_SECRET)
    if tamper == "no header":
        del headers["X-Nurture-Signature"]
    elif tamper == "wrong scheme":
        headers["X-Nurture-Signature"] = headers["X-Nurture-Signature"].replace("sha256", "sha1")
    elif tamper == "altered body":
        body = body.replace(b'"hard"', b'"soft"')
    elif tamper == "garbage":
        headers["X-Nurture-Signature"] = "sha256=zz"
    raw = [(k.encode(), v.encode()) for k, v in {**headers, **web.auth}.items()]
    if tamper == "non-ascii":
        raw = [
            (k, "sha256=é".encode("latin-1") if k == b"X-Nurture-Signature" else v) for k, v in raw
        ]
    response = web.client.post("/v1/webhooks/generic", content=body, headers=raw)
    assert response.status_code == 401
    assert web.events() == []
    assert web.contact("anne@example.com").suppressed_at is None


def test_webhook_refusals(web: Web) -> None:
    body, headers = _signed({"events": []})
    assert (
        web.client.post("/v1/webhooks/sparkpost", content=body, headers=headers).status_code == 404
    )
    plain = {**headers, "Content-Type": "text/plain"}
    assert web.client.post("/v1/webhooks/generic", content=body, headers=plain).status_code == 415
    bad, bad_headers = b"{not json", _signed({})[1]
    bad_headers["X-Nurture-Signature"] = (
        "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), bad, hashlib.sha256).hexdigest()
    )
    response = web.client.post("/v1/webhooks/generic", content=bad, headers=bad_headers)
    assert response.status_code == 400
    body, headers = _signed({"no": "events"})
    assert web.client.post("/v1/webhooks/generic", content=body, headers=headers).status_code == 400
    web.app.state.nurture.settings = web.settings.model_copy(update={"webhook_secret": None})
    response = _generic(web, [])
    assert response.status_code == 401
    assert "NURTURE_WEBHOOK_SECRET" in response.json()["detail"]


# --- Mailgun --------------------------------------------------------------------


def _mailgun(
    web: Web,
    event_data: dict[str, Any],
    *,
    key: str = MAILGUN_KEY,
    age: timedelta = timedelta(0),
    token: str | None = None,
) -> Any:
    timestamp = str(int((clock.now() - age).timestamp()))
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }
    return web.client.post("/v1/webhooks/mailgun", json=payload)


def _failed(message_id: str, severity: str = "permanent", **extra: Any) -> dict[str, Any]:
    return {
        "event": "failed",
        "severity": severity,
        "reason": "bounce",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": clock.now().timestamp() - 30,
        "recipient": "anne@example.com",
        "delivery-status": {"code": 550, "message": "No such mailbox"},
        "message": {"headers": {"message-id": message_id, "to": "anne@example.com"}},
        "user-variables": {},
        **extra,
    }


def test_a_mailgun_permanent_failure_is_a_hard_bounce_matched_by_message_id(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    assert send.message_id is not None
    response = _mailgun(web, _failed(send.message_id.strip("<>")))
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["status"] == "recorded"
    [event] = web.events("email.bounced")
    assert event.event_id == "mailgun:G9Bn5sl1TC6nu79C8C0bwg"
    assert event.source == "webhook:mailgun"
    assert event.properties["bounce"] == "hard"
    assert event.properties["code"] == 550
    assert event.properties["template"] == "lead/welcome"
    assert event.raw is not None and event.raw["delivery-status"]["message"] == "No such mailbox"
    assert web.contact("anne@example.com").suppression_reason == "bounced"


def test_mailgun_events_are_normalised(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    [bob] = web.sent_to("bob@example.com")
    mid = str(send.message_id)
    cases = [
        (_failed(mid, "temporary", id="t-1"), "ignored"),
        (_failed(mid, "", id="s-1"), "recorded"),
        ({**_failed(mid, id="d-1"), "event": "delivered"}, "recorded"),
        ({**_failed("unknown@mailgun", id="c-1"), "event": "complained",
          "user-variables": {"nurture_send_id": bob.send_id}}, "recorded"),
        ({**_failed(mid, id="o-1"), "event": "opened"}, "ignored"),
        ({**_failed("nobody@mailgun.org", id="u-1"), "event": "unsubscribed"}, "ignored"),
        ({**_failed(mid), "id": None}, "rejected"),
    ]  # fmt: skip
    for data, status in cases:
        response = _mailgun(web, data)
        assert response.status_code == 200
        assert response.json()["items"][0]["status"] == status, data
    kinds = {e.event_id: (e.type, e.properties.get("bounce")) for e in web.events()}
    assert kinds == {
        "mailgun:s-1": ("email.bounced", "soft"),
        "mailgun:d-1": ("email.delivered", None),
        "mailgun:c-1": ("email.complained", None),
    }
    assert web.contact("anne@example.com").suppressed_at is None
    assert web.contact("bob@example.com").suppression_reason == "complained"


def test_a_mailgun_retry_is_idempotent_and_a_replay_is_refused(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    data = _failed(str(send.message_id))
    assert _mailgun(web, data, token="t" * 50).json()["recorded"] == 1
    retry = _mailgun(web, data)  # Mailgun signs each attempt anew
    assert (retry.status_code, retry.json()["items"][0]["status"]) == (200, "duplicate")
    replay = _mailgun(web, {**data, "id": "other"}, token="t" * 50)
    assert replay.status_code == 401
    assert "replayed" in replay.json()["detail"]
    assert [e.event_id for e in web.events()] == ["mailgun:G9Bn5sl1TC6nu79C8C0bwg"]


@pytest.mark.parametrize("tamper", ["key", "stale", "future", "signature"])
def test_a_bad_mailgun_signature_is_401_and_records_nothing(web: Web, tamper: str) -> None:
    send = web.send_of(anne_welcome(web))
    data = _failed(str(send.message_id))
    if tamper == "key":
        response = _mailgun(web, data, key="not-the-key")
    elif tamper in ("stale", "future"):
        age = timedelta(minutes=6) * (1 if tamper == "stale" else -1)
        response = _mailgun(web, data, age=age)
    else:
        response = web.client.post(
            "/v1/webhooks/mailgun",
            json={
                "signature": {"timestamp": "1", "token": "x", "signature": []},
                "event-data": data,
            },
        )
    assert response.status_code == 401
    assert web.events() == []
    assert web.contact("anne@example.com").suppressed_at is None


def _temporary(message_id: str, attempt: int) -> dict[str, Any]:
    """Mailgun's documented `failed` event with `severity: temporary`: one per retry."""
    return {
        "id": f"Fs7-5t81S2ag3PcwRsNBaw-{attempt}",
        "timestamp": clock.now().timestamp() - 30,
        "log-level": "warn",
        "event": "failed",
        "severity": "temporary",
        "reason": "generic",
        "envelope": {
            "sender": "bob@mg.example.com",
            "transport": "smtp",
            "targets": "anne@example.com",
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False},
        "delivery-status": {
            "attempt-no": attempt,
            "message": "4.2.2 The email account that you tried to reach is over quota.",
            "code": 452,
            "description": "",
            "session-seconds": 0.1,
            "retry-seconds": 600,
        },
        "message": {"headers": {"to": "anne@example.com", "message-id": message_id}},
        "recipient": "anne@example.com",
        "recipient-domain": "example.com",
        "user-variables": {},
    }


def test_mailgun_retries_then_delivery_leave_the_contact_mailable(web: Web) -> None:
    """Three temporary failures of one message, then its delivery: no bounce at all."""
    send = web.send_of(anne_welcome(web))
    mid = str(send.message_id).strip("<>")
    for attempt in (1, 2, 3):
        response = _mailgun(web, _temporary(mid, attempt))
        assert response.status_code == 200, response.text
    delivered = {**_temporary(mid, 4), "event": "delivered", "severity": None, "id": "dlv-1"}
    assert _mailgun(web, delivered).json()["recorded"] == 1
    anne = web.contact("anne@example.com")
    assert (anne.suppressed_at, anne.soft_bounces) == (None, 0)
    assert web.events("email.bounced") == []  # Mailgun retries: not a bounce
    web.at(START + timedelta(days=2, hours=1))
    web.tick()
    assert len(web.sent_to("anne@example.com")) == 2  # the guide still goes out


def test_a_malformed_signed_mailgun_timestamp_is_a_4xx(web: Web) -> None:
    send = web.send_of(anne_welcome(web))
    token = secrets.token_hex(25)
    for timestamp in ("999999999999", "0" * 12, "-1", "1e9", ""):
        signature = hmac.new(
            MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
        ).hexdigest()
        payload = {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": _failed(str(send.message_id)),
        }
        response = web.client.post("/v1/webhooks/mailgun", json=payload)
        assert 400 <= response.status_code < 500, (timestamp, response.status_code)
    assert web.events() == []
