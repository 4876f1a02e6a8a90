"""Bounces and complaints as MTAs and mailbox providers write them, written by hand.

Following RFC 3464 (DSN), RFC 3462/6522 (multipart/report), RFC 5965 (ARF)
and what Postfix and qmail actually put in them. Each takes the Message-ID
and send id of the email it returns, so tests can use real sends (the
harness's) and the parser tests fixed ones. Line endings are LF, as a
Maildir delivery agent writes them.
"""

from __future__ import annotations


def _original(message_id: str | None, send_id: str | None, recipient: str) -> str:
    lines = [
        "Received: by mail.example.com (Postfix, from userid 1001)",
        "\tid 4F2A31C0042; Mon, 23 Nov 2026 10:02:09 +0100 (CET)",
        "Date: Mon, 23 Nov 2026 10:02:09 +0100",
        "From: =?utf-8?q?=C3=89quipe_Exemple?= <bonjour@example.com>",
        f"To: {recipient}",
        "Subject: =?utf-8?q?Votre_guide_=F0=9F=93=98?=",
    ]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if send_id:
        lines.append(f"X-Nurture-Send-Id: {send_id}")
    lines += [
        "List-Unsubscribe: <https://nurture.example.com/u/eyJzIjo0Mn0.sig>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="=_0123456789abcdef"',
    ]
    return "\n".join(lines) + "\n"


def postfix_bounce(
    *,
    message_id: str | None,
    send_id: str | None,
    recipient: str = "anne@example.org",
    status: str = "5.1.1",
    action: str = "failed",
    envelope: str = "bonjour@example.com",
    report_id: str | None = "<20261123090211.4F2A31C0042@mail.example.com>",
    headers_only: bool = False,
) -> bytes:
    """A Postfix DSN: failed (non-delivery, the original returned) or delayed
    (``action="delayed"``, its headers only, as Postfix sends delay warnings)."""
    delayed = action == "delayed"
    code = "550" if status.startswith("5") else "451"
    subject = (
        "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    )
    explanation = (
        "####################################################################\n"
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
        "####################################################################\n\n"
        "Your message could not be delivered for more than 4 hour(s).\n"
        "It will be retried until it is 5 day(s) old.\n"
        if delayed
        else "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n"
    )
    boundary = "4F2A31C0042.1795424531/mail.example.com"
    original = _original(message_id, send_id, recipient)
    if headers_only or delayed:
        returned = (
            "Content-Description: Undelivered Message Headers\n"
            "Content-Type: text/rfc822-headers\n\n" + original
        )
    else:
        returned = (
            "Content-Description: Undelivered Message\n"
            "Content-Type: message/rfc822\n"
            "Content-Transfer-Encoding: 8bit\n\n"
            + original
            + '\n--=_0123456789abcdef\nContent-Type: text/plain; charset="utf-8"\n\n'
            "Bonjour Anne,\n\n--=_0123456789abcdef--\n"
        )
    report_header = f"Message-Id: {report_id}\n" if report_id else ""
    text = f"""Return-Path: <>
Delivered-To: {envelope}
X-Original-To: {envelope}
Received: by mail.example.com (Postfix)
\tid 7B1E81C0051; Mon, 23 Nov 2026 10:02:11 +0100 (CET)
Date: Mon, 23 Nov 2026 10:02:11 +0100 (CET)
From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
Subject: {subject}
To: {envelope}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Content-Transfer-Encoding: 8bit
{report_header}
This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.com.

{explanation}
For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{recipient}>: host mx.example.org[203.0.113.5] said: {code} {status}
    <{recipient}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com
X-Postfix-Queue-ID: 4F2A31C0042
X-Postfix-Sender: rfc822; {envelope}
Arrival-Date: Mon, 23 Nov 2026 10:02:09 +0100 (CET)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; {code} {status} <{recipient}>: Recipient address
    rejected: User unknown in virtual mailbox table
{"Will-Retry-Until: Sat, 28 Nov 2026 10:02:09 +0100 (CET)" if delayed else ""}
--{boundary}
{returned}
--{boundary}--
"""
    return text.encode("utf-8")


def arf_complaint(
    *,
    message_id: str | None,
    send_id: str | None,
    recipient: str | None = "anne@example.org",
    feedback_type: str = "abuse",
    report_id: str = "<arf-20261123-8f3a@fbl.example.net>",
    envelope: str = "bonjour@example.com",
) -> bytes:
    """An ARF report (RFC 5965) as a feedback loop sends it; `recipient=None`
    redacts the recipient as several providers do."""
    rcpt = f"Original-Rcpt-To: <{recipient}>\n" if recipient else ""
    to = recipient or "redacted@example.net"
    original = _original(message_id, send_id, to)
    text = f"""From: Feedback Loop <fbl@fbl.example.net>
Date: Mon, 23 Nov 2026 11:15:00 +0000
Subject: FW: Votre guide
To: <fbl-reports@example.com>
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
198.51.100.7 on Mon, 23 Nov 2026 09:02:09 +0000.  For more information
about this format please see https://www.rfc-editor.org/rfc/rfc5965.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: ExampleFBL/2.1
Version: 1
Original-Mail-From: <{envelope}>
{rcpt}Arrival-Date: Mon, 23 Nov 2026 09:02:09 +0000
Reporting-MTA: dns; mx.example.net
Source-IP: 198.51.100.7
Authentication-Results: mx.example.net;
               spf=pass smtp.mailfrom=example.com
Reported-Domain: example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

{original}
Bonjour,
--part1_13d.2e68ed54_boundary--
"""
    return text.encode("utf-8")


def qmail_bounce(*, message_id: str, recipient: str = "anne@example.org") -> bytes:
    """qmail's non-standard bounce: no DSN, the original quoted in the text."""
    original = _original(message_id, None, recipient)
    text = f"""Return-Path: <>
Date: 23 Nov 2026 09:02:11 -0000
From: MAILER-DAEMON@mx.example.org
To: bonjour@example.com
Subject: failure notice
Message-ID: <20261123090211.1234.qmail@mx.example.org>

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <bonjour@example.com>
{original}
Bonjour Anne,
"""
    return text.encode("utf-8")


def unrelated_message() -> bytes:
    """What else lands in a bounce mailbox: an out-of-office reply."""
    return b"""From: Anne Martin <anne@example.org>
To: bonjour@example.com
Date: Mon, 23 Nov 2026 10:30:00 +0100
Subject: Absence du bureau
Message-ID: <ooo-77@example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Bonjour, je suis absente jusqu'au 30 novembre.
"""
