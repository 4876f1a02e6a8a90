"""Amazon SES through SNS: real SNS signatures (v1 SHA1, v2 SHA256) with a local key and
certificate, fetched through a stand-in; topics, subscription confirmation, SES events."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

import nurture.clock as clock
from nurture.web.esp.sns import SnsCertificates, is_sns_url, string_to_sign
from tests.web.conftest import START, Web, anne_welcome

TOPIC = "arn:aws:sns:eu-west-1:123456789012:nurture-ses"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92"
)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class StandIn:
    """What the internet would answer: the certificate, and the subscription confirmation."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        self.pages = pages
        self.fetched: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.pages:
            raise OSError(f"no such page {url}")
        return self.pages[url]


@pytest.fixture
def ses(web: Web) -> Web:
    context = web.app.state.nurture
    context.settings = web.settings.model_copy(update={"ses_topic_arns": TOPIC})
    context.sns = SnsCertificates(
        fetch=StandIn(
            {CERT_URL: _certificate(KEY), SUBSCRIBE_URL: b"<ConfirmSubscriptionResponse/>"}
        )
    )
    return web


def _fetched(web: Web) -> list[str]:
    fetch = web.app.state.nurture.sns.fetch
    assert isinstance(fetch, StandIn)
    return fetch.fetched


def _signed(
    message: dict[str, Any], version: str = "1", key: rsa.RSAPrivateKey = KEY
) -> dict[str, Any]:
    message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(message), padding.PKCS1v15(), digest)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def _post(web: Web, message: dict[str, Any]) -> Any:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",  # what SNS sends
        "x-amz-sns-message-type": str(message.get("Type")),
        "x-amz-sns-message-id": str(message.get("MessageId")),
        "x-amz-sns-topic-arn": str(message.get("TopicArn")),
    }
    return web.client.post("/v1/webhooks/ses", content=json.dumps(message), headers=headers)


def _notification(ses_event: dict[str, Any] | str, message_id: str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": ses_event if isinstance(ses_event, str) else json.dumps(ses_event),
        "Timestamp": (clock.now() - timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
        "UnsubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:c9135db0",
    }


def _mail(send_id: object = None, message_id: str = "<unknown@example.org>") -> dict[str, Any]:
    """The `mail` object of AWS's documented samples, with our headers."""
    headers = [
        {"name": "From", "value": "Sender Name <sender@example.com>"},
        {"name": "To", "value": "anne@example.com"},
        {"name": "Subject", "value": "Bienvenue"},
        {"name": "Message-ID", "value": message_id},
    ]
    if send_id is not None:
        headers.append({"name": "X-Nurture-Send-Id", "value": str(send_id)})
    return {
        "timestamp": "2026-11-23T07:59:02.012Z",
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "destination": ["anne@example.com"],
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": {
            "from": ["Sender Name <sender@example.com>"],
            "to": ["anne@example.com"],
            "messageId": message_id,
            "subject": "Bienvenue",
        },
        "tags": {"ses:configuration-set": ["ConfigSet"]},
    }


def _bounce(kind: str, mail: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "anne@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-23T07:59:30.669Z",
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
            "reportingMTA": "dsn; mta.example.com",
        },
        "mail": mail,
    }


def test_ses_events_are_normalised(ses: Web) -> None:
    anne = ses.send_of(anne_welcome(ses))
    [bob_message] = ses.sent_to("bob@example.com")
    bob = ses.send_of(bob_message)
    cases = [
        (_notification(_bounce("Transient", _mail(anne.id)), "m-1"), "1", "recorded"),
        (
            _notification(
                {
                    "notificationType": "Delivery",
                    "mail": _mail(anne.id),
                    "delivery": {
                        "timestamp": "2026-11-23T07:59:40.000Z",
                        "processingTimeMillis": 546,
                        "recipients": ["anne@example.com"],
                        "smtpResponse": "250 ok:  Message 64111812 accepted",
                        "remoteMtaIp": "127.0.2.0",
                        "reportingMTA": "a8-70.smtp-out.amazonses.com",
                    },
                },
                "m-2",
            ),
            "2",
            "recorded",
        ),
        (
            _notification(
                {
                    "eventType": "Complaint",
                    "complaint": {
                        "complainedRecipients": [{"emailAddress": "bob@example.com"}],
                        "timestamp": "2026-11-23T07:59:50.000Z",
                        "feedbackId": "0100015e5e4e5b08-d4ec4a60",
                        "userAgent": "Mozilla/5.0",
                        "complaintFeedbackType": "abuse",
                        "arrivalDate": "2026-11-23T07:59:49.000Z",
                    },
                    "mail": _mail(None, str(bob.message_id)),
                },
                "m-3",
            ),
            "1",
            "recorded",
        ),
        (
            _notification({"eventType": "Open", "open": {}, "mail": _mail(anne.id)}, "m-4"),
            "2",
            "ignored",
        ),
        (
            _notification({"eventType": "DeliveryDelay", "mail": _mail(anne.id)}, "m-5"),
            "2",
            "ignored",
        ),
        (_notification(_bounce("Permanent", _mail()), "m-6"), "2", "ignored"),  # not ours
        (
            _notification(
                "Successfully validated SNS topic for Amazon SES event publishing.", "m-7"
            ),
            "1",
            "ignored",
        ),
    ]
    for message, version, status in cases:
        response = _post(ses, _signed(message, version))
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["status"] == status, message["MessageId"]
    kinds = {e.event_id: (e.type, e.properties.get("bounce")) for e in ses.events()}
    assert kinds == {
        "ses:m-1": ("email.bounced", "soft"),
        "ses:m-2": ("email.delivered", None),
        "ses:m-3": ("email.complained", None),
    }
    [bounce] = ses.events("email.bounced")
    assert bounce.properties["bounceType"] == "Transient"
    assert bounce.raw["bounce"]["bouncedRecipients"][0]["status"] == "5.1.1"
    assert bounce.source == "webhook:ses"
    assert ses.contact("bob@example.com").suppression_reason == "complained"
    assert ses.contact("anne@example.com").soft_bounces == 0  # delivered after the soft bounce
    assert _fetched(ses) == [CERT_URL]  # fetched once, then cached


def test_a_permanent_ses_bounce_suppresses_and_a_resent_message_is_done_once(ses: Web) -> None:
    anne = ses.send_of(anne_welcome(ses))
    message = _signed(_notification(_bounce("Permanent", _mail(anne.id)), "m-1"), "2")
    assert _post(ses, message).json()["recorded"] == 1
    assert ses.contact("anne@example.com").suppression_reason == "bounced"
    again = _post(ses, message)  # SNS retrying a message it thinks failed
    assert again.status_code == 200
    assert again.json()["items"][0]["status"] == "duplicate"
    assert len(ses.events()) == 1


def test_a_subscription_is_confirmed_only_for_our_topic_and_sns_urls(ses: Web) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-11-23T07:59:04.751Z",
    }
    response = _post(ses, _signed(confirmation))
    assert response.status_code == 200, response.text
    assert _fetched(ses) == [CERT_URL, SUBSCRIBE_URL]
    elsewhere = {
        **confirmation,
        "MessageId": "2",
        "SubscribeURL": "https://attacker.example/?Action=ConfirmSubscription",
    }
    assert _post(ses, _signed(elsewhere)).status_code == 400
    other_topic = {
        **confirmation,
        "MessageId": "3",
        "TopicArn": TOPIC.replace("nurture-ses", "theirs"),
    }
    response = _post(ses, _signed(other_topic))
    assert response.status_code == 401
    assert "NURTURE_SES_TOPIC_ARNS" in response.json()["detail"]
    unsubscribed = {**confirmation, "Type": "UnsubscribeConfirmation", "MessageId": "4"}
    assert _post(ses, _signed(unsubscribed)).json()["items"][0]["status"] == "ignored"
    assert _fetched(ses) == [CERT_URL, SUBSCRIBE_URL]
    assert ses.events() == []


@pytest.mark.parametrize(
    "tamper",
    [
        "other key",
        "altered message",
        "foreign cert url",
        "http cert url",
        "cert url with query",
        "unknown version",
        "not base64",
        "expired cert",
        "no topics",
    ],
)
def test_a_bad_sns_signature_is_401_and_records_nothing(ses: Web, tamper: str) -> None:
    anne = ses.send_of(anne_welcome(ses))
    message = _signed(
        _notification(_bounce("Permanent", _mail(anne.id)), "m-1"),
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if tamper == "other key"
        else KEY,
    )
    if tamper == "altered message":
        message["Message"] = message["Message"].replace("Permanent", "Transient")
    elif tamper == "foreign cert url":
        message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.attacker.example/x.pem"
    elif tamper == "http cert url":
        message["SigningCertURL"] = CERT_URL.replace("https", "http")
    elif tamper == "cert url with query":
        message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com/?x=a.pem"
    elif tamper == "unknown version":
        message["SignatureVersion"] = "3"
    elif tamper == "not base64":
        message["Signature"] = "%%%"
    elif tamper == "expired cert":
        ses.app.state.nurture.sns = SnsCertificates(
            fetch=StandIn({CERT_URL: _certificate(KEY, days=-1)})
        )
    elif tamper == "no topics":
        ses.app.state.nurture.settings = ses.settings
    response = _post(ses, message)
    assert response.status_code == 401, response.text
    assert ses.events() == []
    assert ses.contact("anne@example.com").suppressed_at is None


def test_sns_urls() -> None:
    good = [
        CERT_URL,
        "https://sns.us-gov-west-1.amazonaws.com/a.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/a.pem",
    ]
    bad = [
        "https://sns.eu-west-1.amazonaws.com:444/a.pem",
        "https://user@sns.eu-west-1.amazonaws.com/a.pem",
        "https://sns.amazonaws.com/a.pem",
        "https://evil.com/sns.eu-west-1.amazonaws.com/a.pem",
        "https://sns.eu-west-1.amazonaws.com/a.pem#x",
        None,
    ]
    assert [is_sns_url(u, pem=True) for u in good] == [True] * 3
    assert [is_sns_url(u, pem=True) for u in bad] == [False] * len(bad)
    assert is_sns_url(SUBSCRIBE_URL, pem=False)
    assert not is_sns_url("https://sns.eu-west-1.amazonaws.com/other?Action=x", pem=False)
