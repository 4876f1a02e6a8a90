"""Reading bounces (RFC 3464 DSNs, qmail's text) and complaints (RFC 5965 ARF) from bytes.

The samples (`tests/mail_reports.py`) are written as Postfix, qmail and a
feedback loop write them; the Message-ID and send id are the returned
original's, which is how a report is tied to our email.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nurture.delivery.reports import UnreadableReport, read_report, send_id_from_return_path
from tests.mail_reports import arf_complaint, postfix_bounce, qmail_bounce, unrelated_message

MID = "<5f0c2a9e8b7d4e3f9a1b2c3d4e5f6a7b@example.com>"


def test_a_postfix_non_delivery_is_a_hard_bounce_naming_the_original() -> None:
    report = read_report(postfix_bounce(message_id=MID, send_id="42"))
    assert report.kind == "bounce" and report.bounce == "hard"
    assert report.status == "5.1.1"
    assert report.recipients == ("anne@example.org",)
    assert report.original_message_id == MID
    assert report.original_send_id == "42"
    assert report.report_id == "<20261123090211.4F2A31C0042@mail.example.com>"
    assert report.event_id == "dsn:<20261123090211.4F2A31C0042@mail.example.com>"
    assert report.at == datetime(2026, 11, 23, 9, 2, 11, tzinfo=UTC)
    assert report.reporter == "dns; mail.example.com"
    assert report.diagnostic is not None and report.diagnostic.startswith("smtp; 550 5.1.1")


def test_a_delay_warning_is_a_soft_bounce_read_from_the_returned_headers() -> None:
    data = postfix_bounce(message_id=MID, send_id="42", action="delayed", status="4.4.1")
    assert b"text/rfc822-headers" in data
    report = read_report(data)
    assert (report.kind, report.bounce, report.status) == ("bounce", "soft", "4.4.1")
    assert (report.original_message_id, report.original_send_id) == (MID, "42")


def test_a_failure_with_a_temporary_status_is_soft_whatever_the_action() -> None:
    # Postfix gives up after days of "connection timed out": Action failed, Status 4.4.1.
    report = read_report(postfix_bounce(message_id=MID, send_id="42", status="4.4.1"))
    assert report.bounce == "soft"


def test_the_verp_address_the_bounce_came_back_to_names_the_send() -> None:
    report = read_report(
        postfix_bounce(
            message_id=None, send_id=None, envelope="bounces+42@example.com", report_id=None
        )
    )
    assert report.original_message_id is None and report.original_send_id is None
    assert "bounces+42@example.com" in report.envelope_addresses
    assert (
        send_id_from_return_path("bounces+{send_id}@example.com", report.envelope_addresses) == "42"
    )
    # Without a Message-ID, the report's id is a hash of its bytes: stable all the same.
    assert report.report_id.startswith("sha256:")
    again = read_report(
        postfix_bounce(
            message_id=None, send_id=None, envelope="bounces+42@example.com", report_id=None
        )
    )
    assert again.event_id == report.event_id


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (["bonjour@example.com", "Bounces+7@Example.COM"], "7"),
        (["bounces+x7@example.com"], None),
        (["bounces+7@example.com.evil.net"], None),
        (["evil-bounces+7@example.com"], None),
        ([], None),
    ],
)
def test_verp_addresses(addresses: list[str], expected: str | None) -> None:
    assert send_id_from_return_path("bounces+{send_id}@example.com", addresses) == expected


def test_an_arf_abuse_report_is_a_complaint() -> None:
    report = read_report(arf_complaint(message_id=MID, send_id="42"))
    assert report.kind == "complaint" and report.bounce is None
    assert report.feedback_type == "abuse"
    assert report.recipients == ("anne@example.org",)
    assert (report.original_message_id, report.original_send_id) == (MID, "42")
    assert report.event_id == "arf:<arf-20261123-8f3a@fbl.example.net>"
    assert report.reporter == "ExampleFBL/2.1"
    assert report.at == datetime(2026, 11, 23, 11, 15, tzinfo=UTC)  # the report's Date
    assert "bonjour@example.com" in report.envelope_addresses  # Original-Mail-From


def test_a_redacted_arf_report_still_names_the_original() -> None:
    report = read_report(arf_complaint(message_id=MID, send_id="42", recipient=None))
    assert report.recipients == ()
    assert report.original_message_id == MID


def test_a_feedback_report_that_is_not_abuse_is_not_a_complaint() -> None:
    with pytest.raises(UnreadableReport, match="'not-spam': only 'abuse' is a complaint"):
        read_report(arf_complaint(message_id=MID, send_id="42", feedback_type="not-spam"))


def test_qmail_bounce_without_a_dsn_quotes_the_original_in_its_text() -> None:
    report = read_report(qmail_bounce(message_id=MID))
    assert (report.kind, report.bounce) == ("bounce", "hard")
    assert report.recipients == ("anne@example.org",)
    assert report.original_message_id == MID


def test_a_success_notice_is_no_bounce() -> None:
    data = postfix_bounce(message_id=MID, send_id="42", action="delivered", status="2.0.0")
    with pytest.raises(UnreadableReport, match=r"no failure \(Action: delivered\)"):
        read_report(data)


@pytest.mark.parametrize(
    "data", [unrelated_message(), b"", b"\x00\xff garbage", b"Subject: hi\n\nhello\n"]
)
def test_anything_else_is_unreadable_never_an_exception(data: bytes) -> None:
    with pytest.raises(UnreadableReport, match="not a bounce or an abuse report"):
        read_report(data)
