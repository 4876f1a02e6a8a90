"""Delivering claimed sends: last checks, render, transport, record the outcome.

A send row is claimed before any mail leaves (see `nurture.store.sends.claim_sends`).
Delivery leases the row, checks once more that this person may still be
emailed — they may have unsubscribed, bounced or become a prospect since the
claim — renders with the contact's current data, hands the message to the
transport and records the outcome. A transient failure (SMTP 4xx, a dropped
connection) puts the row back with a later `next_attempt_at`, backing off up
to `MAX_ATTEMPTS`; a permanent one (5xx) marks it failed, never to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine as SAEngine
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.definitions.ladder import at_or_beyond
from nurture.definitions.loader import Project
from nurture.delivery.consent import contact_block, paused_until
from nurture.delivery.links import Links, list_unsubscribe
from nurture.delivery.pace import THROTTLED, Pace
from nurture.delivery.sendlog import log_outcome
from nurture.errors import TemplateError
from nurture.records import Record, Recorder
from nurture.rendering import TemplateLibrary, add_open_pixel, email_context
from nurture.store import enrollments as work
from nurture.store import sends as ledger
from nurture.store.contacts import contacts_by_id
from nurture.store.models import Contact, Enrollment
from nurture.store.outcomes import OutcomeLog, outcome_log
from nurture.store.statuses import EnrollmentStatus, SendStatus
from nurture.transports import MAX_ATTEMPTS, DeliveryError, Transport, retry_delay
from nurture.transports.base import Throttled
from nurture.transports.message import Delivery, OutgoingEmail

SEND_LEASE = timedelta(minutes=5)
#: How long an email whose template is broken (with no good version to fall back
#: on) waits before it is rendered again: it is held, never failed or skipped.
TEMPLATE_HOLD = timedelta(minutes=5)
#: The prefix of `sends.error` of an email held for its template (metrics, explain).
HELD = "held: "

log = logging.getLogger("nurture.delivery")


def block_reason(
    contact: Contact,
    enrollment: Enrollment | None,
    config: m.ProjectConfig,
    listed: str | None = None,
) -> str | None:
    """Why this contact must not get a nurture email now, or None.

    `listed` is the suppression-list reason for the contact's address, if any:
    the list is checked as well as the contact's own flag, so an address
    suppressed before its contact existed is never emailed either.
    """
    reason = contact_block(contact, config.sending)
    if reason is not None:
        return reason
    if listed is not None:
        return f"suppressed:{listed}"
    if at_or_beyond(contact.stage or config.stages[0], config.prospect_stage, config.stages):
        return "prospect"
    if enrollment is not None and enrollment.status == EnrollmentStatus.EXITED:
        return f"exited:{enrollment.exit_reason}"
    return None


class SendRow(Protocol):
    """What delivery reads of a send: a `Send` row, or a `ClaimedSend`."""

    @property
    def id(self) -> int: ...
    @property
    def contact_id(self) -> int: ...
    @property
    def enrollment_id(self) -> int | None: ...
    @property
    def workflow(self) -> str | None: ...
    @property
    def step(self) -> str | None: ...
    @property
    def template(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def variant(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    """A send the advance just claimed: what delivery needs, without an ORM object
    (building a `Send` per email cost ~2% of a worker's time)."""

    id: int
    contact_id: int
    enrollment_id: int | None
    workflow: str | None
    step: str | None
    template: str
    attempts: int
    variant: str | None = None


class Deliverer:
    """The last leg of a send: lease, last checks, render, transport, record the outcome.

    Built by `Engine.deliverer`; `deliver` takes sends due again, `deliver_claimed` those an
    advance has just claimed.
    """

    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        transport: Transport,
        links: Links,
        record: Recorder,
        lease: timedelta = SEND_LEASE,
        pace: Pace | None = None,
    ) -> None:
        self._lease = lease
        self._pace = pace
        self._project = project
        self._sessions = sessions
        self._transport = transport
        self._links = links
        self._record = record
        # An edited template reaches a running worker within a second.
        self._templates = TemplateLibrary(project.templates_dir, recheck_after=1.0)
        self._reported: set[tuple[str, bool]] = set()
        bind = sessions.kw.get("bind")
        if not isinstance(bind, SAEngine):
            raise TypeError("the Deliverer's sessions must be bound to one engine")
        self._bind = bind

    def deliver(self, send_ids: Sequence[int] | None, now: datetime, limit: int = 500) -> int:
        """Deliver the given sends (or the oldest due ones); returns how many left."""
        with self._sessions.begin() as session:
            leased = ledger.lease_sends(session, clock.now(), self._lease, send_ids, limit=limit)
            if not leased:
                return 0
            sends = ledger.load_sends(session, leased)
            contacts = contacts_by_id(session, {s.contact_id for s in sends})
            listed = suppression.reasons_for(session, {c.email for c in contacts.values()})
            enrollments = {
                e.id: e
                for e in work.load_enrollments(
                    session, {s.enrollment_id for s in sends if s.enrollment_id is not None}
                )
            }
            session.expunge_all()
        self._send(sends, contacts, enrollments, listed, now)
        return len(leased)

    def deliver_claimed(
        self,
        sends: Sequence[SendRow],
        contacts: Mapping[int, Contact],
        enrollments: Mapping[int, Enrollment],
        now: datetime,
    ) -> None:
        """Sends the caller claimed, already leased, a moment ago (`Engine.advance`).

        Their contacts come from the advance, not reloaded. What may have
        changed since the advance read them (an unsubscribe, a bounce, a stage
        move, an exit) is read again, a few columns, just before sending.
        """
        with self._sessions.begin() as session:
            standing = ledger.contact_standing(session, {s.contact_id for s in sends})
            endings = ledger.enrollment_endings(
                session, {s.enrollment_id for s in sends if s.enrollment_id is not None}
            )
            listed = suppression.reasons_for(session, {c.email for c in contacts.values()})
        fresh: dict[int, Contact] = {}
        for contact_id, columns in standing.items():
            contact = contacts[contact_id]
            for name, value in columns.items():
                if getattr(contact, name) != value:  # an ORM set is costly; most are unchanged
                    setattr(contact, name, value)
            fresh[contact_id] = contact
        for enrollment_id, (status, exit_reason) in endings.items():
            enrollment = enrollments[enrollment_id]
            enrollment.status, enrollment.exit_reason = status, exit_reason
        # A contact erased meanwhile has no row left to send to (nor a send row).
        self._send([s for s in sends if s.contact_id in fresh], fresh, enrollments, listed, now)

    def _send(
        self,
        sends: Sequence[SendRow],
        contacts: Mapping[int, Contact],
        enrollments: Mapping[int, Enrollment],
        listed: Mapping[str, str],
        now: datetime,
    ) -> None:
        outcomes: list[dict[str, Any]] = []
        sendable: list[tuple[SendRow, Contact]] = []
        config = self._project.config
        for send in sends:
            contact = contacts[send.contact_id]
            enrollment = enrollments.get(send.enrollment_id) if send.enrollment_id else None
            reason = block_reason(contact, enrollment, config, listed.get(contact.email))
            if reason is not None:
                outcomes.append(self._finished(send, SendStatus.SKIPPED, error=reason))
                self._emit(now, "skip", send, contact, {"reason": reason})
                continue
            pause = paused_until(contact, now)
            if pause is not None:
                # Paused since the claim: deferred, not dropped, and not an attempt.
                outcomes.append(self._deferred(send, pause))
                details = {"reason": "paused", "until": pause.isoformat()}
                self._emit(now, "skip", send, contact, details)
                continue
            sendable.append((send, contact))
        if outcomes:
            with self._sessions.begin() as session:
                ledger.finish_sends(session, outcomes)
        if sendable:
            log = outcome_log(self._bind)
            try:
                log.open()
                self._send_all(sendable, log, now)
            finally:
                log.close()

    def _send_all(
        self, sendable: Sequence[tuple[SendRow, Contact]], log: OutcomeLog, now: datetime
    ) -> None:
        composed: list[tuple[SendRow, Contact, OutgoingEmail]] = []
        renewed = clock.now()

        def emails() -> Iterator[OutgoingEmail]:
            # Composed one at a time, while the previous outcome commits.
            for send, contact in sendable:
                try:
                    email = self._compose(send, contact, now)
                except TemplateError as exc:
                    # Broken since it was checked, with no good version in this process:
                    # held and rendered again later, so fixing the file sends it.
                    self._broken(exc, fallback=False)
                    log.record(self._held(send, str(exc), now + TEMPLATE_HOLD))
                    details = {"reason": "template", "error": str(exc)}
                    self._emit(now, "hold", send, contact, details)
                    continue
                composed.append((send, contact, email))
                yield email

        def record(index: int, result: Delivery | DeliveryError) -> None:
            # One by one, as the server answers: a crash mid-batch leaves at most
            # the message in flight to be sent again, never the whole batch.
            nonlocal renewed
            send, contact, email = composed[index]
            outcome = self._outcome(send, contact, email, result, now)
            moment = clock.now()
            log.record(outcome)
            if moment - renewed > self._lease / 2:
                # A slow relay must not let the lease on the rest of the batch
                # expire: another worker would take those sends and send them too.
                done = {s.id for s, _, _ in composed[: index + 1]}
                rest = [(s.id, s.attempts) for s, _ in sendable if s.id not in done]
                with self._sessions.begin() as session:
                    ledger.renew_send_leases(session, rest, moment + self._lease)
                renewed = moment

        self._transport.send_many(
            emails(),
            on_result=record,
            before_deliver=log.ready,
            gate=self._pace.turn if self._pace is not None else None,
        )

    def _compose(self, send: SendRow, contact: Contact, now: datetime) -> OutgoingEmail:
        config = self._project.config
        view = view_of(contact, config, now)
        token = self._links.unsubscribe_token(send.id)
        unsubscribe = f"{self._links.base_url}/u/{token}"
        context = email_context(
            view,
            unsubscribe_url=unsubscribe,
            view_in_browser_url=self._links.view_in_browser(send.id),
            now=now,
        )
        view_url = context["view_in_browser_url"]
        rendered = self._templates.render(
            send.template,
            context,
            # The "view in browser" link is not a click on the content: untracked.
            rewrite_link=lambda url: url if url == view_url else self._links.click(send.id, url),
        )
        if rendered.fallback is not None:
            self._broken(TemplateError(rendered.fallback), fallback=True)
        sending = config.sending
        return OutgoingEmail(
            send_id=str(send.id),
            from_address=sending.from_address,
            to=contact.email,
            subject=rendered.subject,
            html=add_open_pixel(rendered.html, self._links.open_pixel(send.id)),
            text=rendered.text,
            reply_to=sending.reply_to,
            # VERP (`sending.return_path`): a bounce comes back to an address naming the send.
            return_path=sending.return_path_for(str(send.id)),
            headers={
                "List-Unsubscribe": list_unsubscribe(unsubscribe, token, sending),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
                # ESPs echo these in their webhooks: bounces match the send directly
                # (Amazon SES reports our X-Nurture-Send-Id among the message's headers).
                # The id is an int: JSON as is.
                "X-Mailgun-Variables": f'{{"nurture_send_id": "{send.id}"}}',
                "X-SMTPAPI": f'{{"unique_args": {{"nurture_send_id": "{send.id}"}}}}',  # SendGrid
                "X-PM-Metadata-nurture_send_id": str(send.id),  # Postmark
                "X-Mailin-custom": f'{{"nurture_send_id": "{send.id}"}}',  # Brevo
            },
        )

    def _outcome(
        self,
        send: SendRow,
        contact: Contact,
        email: OutgoingEmail,
        result: Delivery | DeliveryError,
        now: datetime,
    ) -> dict[str, Any]:
        if isinstance(result, Delivery):
            self._emit(
                now,
                "send",
                send,
                contact,
                {
                    "template": send.template,
                    **({"variant": send.variant} if send.variant else {}),
                    "subject": email.subject,
                    "send_id": send.id,
                },
            )
            return {
                **self._finished(send, SendStatus.SENT),
                "message_id": result.message_id,
                "subject": email.subject,
                "sent_at": result.accepted_at,
            }
        if isinstance(result, Throttled):
            # Over `sending.rate`: left due, not an attempt, nothing failed.
            until = now + timedelta(seconds=result.retry_after)
            self._emit(now, "throttled", send, contact, {"until": until.isoformat()})
            return self._held(send, THROTTLED, until, prefix="")
        if result.transient and send.attempts < MAX_ATTEMPTS:
            retry_at = now + retry_delay(send.attempts)
            self._emit(
                now, "retry", send, contact, {"error": str(result), "at": retry_at.isoformat()}
            )
            return {
                "send_id": send.id,
                "status": SendStatus.CLAIMED,
                "error": str(result),
                "next_attempt_at": retry_at,
                "lease_until": None,
            }
        self._emit(now, "fail", send, contact, {"reason": "delivery", "error": str(result)})
        return self._finished(send, SendStatus.FAILED, error=str(result))

    def _broken(self, error: TemplateError, *, fallback: bool) -> None:
        """Say once per problem, with its file:line, that a template broke while running."""
        key = (str(error), fallback)
        if key in self._reported:
            return
        self._reported.add(key)
        if fallback:
            log.error("%s: sending the template's last good version until this is fixed", error)
        else:
            log.error(
                "%s: its emails are held until this is fixed (checked every %s)",
                error,
                TEMPLATE_HOLD,
            )

    @staticmethod
    def _held(send: SendRow, problem: str, until: datetime, prefix: str = HELD) -> dict[str, Any]:
        """Left due until `until`, not counted as an attempt, with why in `error`."""
        return {
            "send_id": send.id,
            "status": SendStatus.CLAIMED,
            "error": f"{prefix}{problem}"[:1000],
            "next_attempt_at": until,
            "lease_until": None,
            "attempts": max(send.attempts - 1, 0),
        }

    @staticmethod
    def _deferred(send: SendRow, until: datetime) -> dict[str, Any]:
        return {
            "send_id": send.id,
            "status": SendStatus.CLAIMED,
            "next_attempt_at": until,
            "lease_until": None,
            "attempts": max(send.attempts - 1, 0),
        }

    @staticmethod
    def _finished(send: SendRow, status: str, error: str | None = None) -> dict[str, Any]:
        return {
            "send_id": send.id,
            "status": status,
            "error": error,
            "next_attempt_at": None,
            "lease_until": None,
        }

    def _emit(
        self, now: datetime, kind: str, send: SendRow, contact: Contact, details: Mapping[str, Any]
    ) -> None:
        self._record(
            Record(now, kind, contact.id, contact.email, send.workflow, send.step, dict(details))
        )
        log_outcome(kind, send, details)
