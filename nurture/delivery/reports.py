"""Bounces and complaints from a mailbox: one message's bytes → a `MailReport`, no I/O.

What a self-hosted MTA sends back to the envelope sender, and what a mailbox
provider's feedback loop sends to the address registered with it:

- **Delivery status notifications** (RFC 3464: ``multipart/report;
  report-type=delivery-status`` with a ``message/delivery-status`` part, as
  Postfix, Exim, Sendmail, Exchange write them) and the older non-standard
  bounces: `flufl.bounce` (Mailman's detectors) finds the failed recipients
  and whether each failure is permanent or temporary. Where the DSN gives a
  ``Status:`` for the recipient its class decides: 5.x.x is a *hard* bounce,
  4.x.x a *soft* one (Postfix gives up on a 4.4.1 "connection timed out"
  after days with ``Action: failed``: that mailbox may well work tomorrow);
  without one, flufl's permanent is hard and temporary soft.
- **Abuse reports** (ARF, RFC 5965: ``multipart/report;
  report-type=feedback-report`` with a ``message/feedback-report`` part),
  read with the standard library: ``Feedback-Type: abuse`` is a complaint;
  other types (``not-spam``, ``auth-failure``…) are not.

Either way the report is tied to our email by what it quotes: the returned
original (a ``message/rfc822`` or ``text/rfc822-headers`` part, or failing
that the text of the bounce) carries our ``Message-ID`` and
``X-Nurture-Send-Id``; and by the address it was sent to when
`sending.return_path` puts the send id in the envelope sender (VERP). Which
of these is trusted is decided by the caller, which knows our sends
(`nurture.lifecycle.bounce_reports`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Literal

from flufl.bounce import all_failures

from nurture.definitions.model import SEND_ID_PLACEHOLDER
from nurture.errors import NurtureError

# flufl.bounce logs each detector it runs (INFO) and the traceback of one that
# chokes on a message (ERROR, then raises): the message's reason says it instead.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

#: Our header on every email (`nurture.transports.mime.SEND_ID_HEADER`; the
#: transports are a layer beside this one, so the name is repeated here).
SEND_ID_HEADER = "X-Nurture-Send-Id"

#: Where a delivered report says which address it was delivered to (Postfix
#: `local`/`virtual`, Dovecot LDA, Exim, qmail): the VERP address lands there.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}@[^<>\s]{1,250}>")
_QUOTED_HEADER = re.compile(
    rf"^(?:>\s*)?(Message-ID|{SEND_ID_HEADER}):[ \t]*(\S[^\r\n]*)", re.IGNORECASE | re.MULTILINE
)
_SEND_ID = re.compile(r"\d{1,18}\Z")
_LONGEST_ID = 150


class UnreadableReport(NurtureError):
    """Not a bounce or a complaint we can read."""


@dataclass(frozen=True)
class MailReport:
    """One bounce or complaint as read from its message, before it is matched to a send.

    `report_id` is stable for the same message (its Message-ID, else a hash of
    its bytes), so reading a mailbox twice gives the same ids.
    """

    kind: Literal["bounce", "complaint"]
    report_id: str
    at: datetime | None
    #: "hard" or "soft" for a bounce; None for a complaint.
    bounce: Literal["hard", "soft"] | None = None
    #: The addresses the report is about (failed recipients, ARF's Original-Rcpt-To).
    recipients: tuple[str, ...] = ()
    #: The enhanced status code (RFC 3463), e.g. "5.1.1", when the DSN gives one.
    status: str | None = None
    #: The remote server's answer (DSN ``Diagnostic-Code``), for people.
    diagnostic: str | None = None
    #: ARF ``Feedback-Type`` (abuse, fraud…).
    feedback_type: str | None = None
    #: What the returned original says about itself.
    original_message_id: str | None = None
    original_send_id: str | None = None
    #: Where the report was addressed (for the VERP return path).
    envelope_addresses: tuple[str, ...] = ()
    #: Who reported: the DSN's Reporting-MTA or the ARF User-Agent.
    reporter: str | None = None

    @property
    def event_id(self) -> str:
        """``dsn:<id>`` or ``arf:<id>``: the same message always gives the same event id."""
        return f"{'arf' if self.kind == 'complaint' else 'dsn'}:{self.report_id}"


def read_report(data: bytes) -> MailReport:
    """The bounce or complaint in a message's bytes; `UnreadableReport` says why not."""
    message = message_from_bytes(data, policy=policy.compat32)
    report_id = _report_id(message, data)
    at = _date(message.get("Date"))
    envelope = _envelope_addresses(message)
    feedback = _first_part(message, "message/feedback-report")
    if feedback is not None:
        return _complaint(message, feedback, report_id, at, envelope)
    return _bounce(message, report_id, at, envelope)


def send_id_from_return_path(template: str, addresses: Iterable[str]) -> str | None:
    """The send id a VERP address (``bounces+42@example.com`` for
    ``bounces+{send_id}@example.com``) carries, from the first of `addresses` that is one."""
    before, _, after = template.partition(SEND_ID_PLACEHOLDER)
    local_after, _, domain = after.partition("@")
    pattern = re.compile(
        rf"{re.escape(before)}(\d{{1,18}}){re.escape(local_after)}@{re.escape(domain)}\Z",
        re.IGNORECASE,
    )
    for address in addresses:
        match = pattern.match(address.strip())
        if match:
            return match.group(1)
    return None


def _bounce(
    message: Message, report_id: str, at: datetime | None, envelope: list[str]
) -> MailReport:
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector choking on odd input (Yale's on a missing From)
        raise UnreadableReport(
            f"not a bounce or an abuse report (a bounce detector failed: {type(exc).__name__})"
        ) from None
    failed = {_decoded(a): "permanent" for a in permanent}
    failed.update({_decoded(a): "temporary" for a in temporary if _decoded(a) not in failed})
    if not failed:
        part = _first_part(message, "message/delivery-status")
        if part is not None:
            actions = {b.get("Action", "").strip().lower() for b in _blocks(part)[1:]}
            shown = ", ".join(sorted(a for a in actions if a)) or "none"
            raise UnreadableReport(f"a delivery report with no failure (Action: {shown})")
        raise UnreadableReport("not a bounce or an abuse report")
    blocks = _recipient_blocks(message)
    recipient = sorted(failed, key=lambda a: (failed[a] != "permanent", a))[0]
    block = blocks.get(recipient.lower(), {})
    status = _status(block.get("status")) or _status(block.get("diagnostic-code"))
    if status is not None and status[0] in "45":
        bounce: Literal["hard", "soft"] = "hard" if status[0] == "5" else "soft"
    else:
        bounce = "hard" if failed[recipient] == "permanent" else "soft"
    per_message = _blocks(_first_part(message, "message/delivery-status"))
    sender = per_message[0].get("X-Postfix-Sender") if per_message else None
    original_id, original_send = _original(message)
    return MailReport(
        kind="bounce",
        report_id=report_id,
        at=at,
        bounce=bounce,
        recipients=tuple(sorted(failed)),
        status=status,
        diagnostic=_clean(block.get("diagnostic-code")),
        original_message_id=original_id,
        original_send_id=original_send,
        envelope_addresses=tuple(dict.fromkeys(envelope + _addresses(sender))),
        reporter=_clean(per_message[0].get("Reporting-MTA")) if per_message else None,
    )


def _complaint(
    message: Message, feedback: Message, report_id: str, at: datetime | None, envelope: list[str]
) -> MailReport:
    fields = _feedback_fields(feedback)
    kind = (fields.get("Feedback-Type") or "").strip().lower()
    if kind != "abuse":
        raise UnreadableReport(
            f"a feedback report of type {kind or 'none'!r}: only 'abuse' is a complaint"
        )
    original_id, original_send = _original(message)
    recipients = _addresses(fields.get("Original-Rcpt-To"))
    return MailReport(
        kind="complaint",
        report_id=report_id,
        at=at or _date(fields.get("Arrival-Date")),
        recipients=tuple(recipients),
        feedback_type=kind,
        original_message_id=original_id,
        original_send_id=original_send,
        envelope_addresses=tuple(
            dict.fromkeys(envelope + _addresses(fields.get("Original-Mail-From")))
        ),
        reporter=_clean(fields.get("User-Agent")),
    )


def _feedback_fields(part: Message) -> Message:
    """The machine-readable fields of a ``message/feedback-report`` part.

    The parser gives a ``message/*`` part its content as a message of its own,
    whose headers are the fields; a part it kept as text is parsed here.
    """
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = part.get_payload(decode=True)
    return HeaderParser().parsestr(
        text.decode("ascii", "replace") if isinstance(text, bytes) else str(payload)
    )


def _original(message: Message) -> tuple[str | None, str | None]:
    """(Message-ID, send id) of the returned original: its message/rfc822 or
    text/rfc822-headers part, else header lines quoted in the bounce's text."""
    headers: Message | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
                break
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                headers = HeaderParser().parsestr(text.decode("ascii", "replace"))
                break
    if headers is not None:
        found = _message_id(headers.get("Message-ID")), _send_id(headers.get(SEND_ID_HEADER))
        if any(found):
            return found
    message_id = send_id = None
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        text = part.get_payload(decode=True)
        if not isinstance(text, bytes):
            continue
        for name, value in _QUOTED_HEADER.findall(text.decode("utf-8", "replace")):
            if name.lower() == "message-id":
                message_id = message_id or _message_id(value)
            else:
                send_id = send_id or _send_id(value)
    return message_id, send_id


def _recipient_blocks(message: Message) -> dict[str, dict[str, str]]:
    """Each recipient's fields (lower-case names) in the DSN, by lower-case address."""
    found: dict[str, dict[str, str]] = {}
    for block in _blocks(_first_part(message, "message/delivery-status"))[1:]:
        fields = {k.lower(): str(v) for k, v in block.items()}
        for name in ("original-recipient", "final-recipient"):
            address = _typed_address(fields.get(name))
            if address:
                found.setdefault(address.lower(), fields)
    return found


def _blocks(part: Message | None) -> list[Message]:
    """The header blocks of a message/delivery-status part (per-message first)."""
    if part is None:
        return []
    payload = part.get_payload()
    return [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []


def _first_part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _typed_address(value: str | None) -> str | None:
    """``rfc822; anne@example.org`` → ``anne@example.org``."""
    if not value:
        return None
    _, _, address = value.partition(";")
    address = parseaddr((address or value).strip())[1]
    return address or None


def _report_id(message: Message, data: bytes) -> str:
    """The report's Message-ID, or a hash of its bytes: stable either way, and short."""
    found = _message_id(message.get("Message-ID"))
    if found is None:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    if len(found) > _LONGEST_ID:
        return "sha256:" + hashlib.sha256(found.encode()).hexdigest()
    return found


def _message_id(value: object) -> str | None:
    match = _MESSAGE_ID.search(str(value)) if value else None
    return match.group() if match else None


def _send_id(value: object) -> str | None:
    text = str(value).strip() if value else ""
    return text if _SEND_ID.match(text) else None


def _status(value: str | None) -> str | None:
    match = _STATUS.search(value) if value else None
    return match.group() if match else None


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _envelope_addresses(message: Message) -> list[str]:
    values = [str(v) for name in _ENVELOPE_HEADERS for v in message.get_all(name, [])]
    return [a for _, a in getaddresses(values) if a]


def _addresses(value: object) -> list[str]:
    if not value:
        return []
    text = str(value)
    return [a for _, a in getaddresses([text.partition(";")[2] or text]) if a]


def _decoded(address: bytes) -> str:
    return address.decode("ascii", "replace")


def _clean(value: object) -> str | None:
    """A field value on one line, at most 500 characters (it is shown and stored)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:500] or None
