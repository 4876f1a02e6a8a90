"""The outbox for messages to sales and CRMs: signed webhooks and emails.

`queue` inserts a notification keyed by a dedupe key inside the caller's
transaction, so a handoff notifies each target exactly once however often the
code that opened it runs. `Notifier.deliver` works like email delivery:
lease, send, record; transient failures (timeouts, 5xx, 429) back off and
retry up to a limit, permanent ones (other 4xx) stop; every attempt is
appended to the row's delivery log.

Webhooks are JSON POSTs signed like the incoming generic webhook:
`X-Nurture-Signature: sha256=<hex HMAC-SHA256 of the body>`, with the event in
`X-Nurture-Event` and the notification id in `X-Nurture-Delivery` (receivers
dedupe on it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.contacts.standing import view_of
from nurture.contacts.view import ContactView
from nurture.definitions.loader import Project
from nurture.errors import TemplateError
from nurture.lifecycle.accounts import signup_token
from nurture.lifecycle.handoff.readers import timezone_for
from nurture.rendering import TemplateLibrary, email_context
from nurture.store.contacts import contact_by_id
from nurture.store.models import Notification
from nurture.store.notifications import (
    due_notifications,
    insert_notifications,
    lease_notification,
    notification_by_id,
)
from nurture.store.statuses import NotificationStatus
from nurture.transports import MAX_ATTEMPTS, Transport, retry_delay
from nurture.transports.message import Delivery, OutgoingEmail

log = logging.getLogger("nurture.notifications")

LEASE = timedelta(minutes=2)
WEBHOOK_TIMEOUT = 10.0


def queue(
    session: Session,
    dedupe_key: str,
    kind: str,
    topic: str,
    target: str,
    payload: Mapping[str, Any],
    now: datetime,
    *,
    template: str | None = None,
    handoff_id: int | None = None,
    contact_id: int | None = None,
) -> None:
    """Queue one notification unless one with this key exists (each is sent once)."""
    row = notification(
        dedupe_key,
        kind,
        topic,
        target,
        payload,
        now,
        template=template,
        handoff_id=handoff_id,
        contact_id=contact_id,
    )
    insert_notifications(session, [row])


def notification(
    dedupe_key: str,
    kind: str,
    topic: str,
    target: str,
    payload: Mapping[str, Any],
    now: datetime,
    *,
    template: str | None = None,
    handoff_id: int | None = None,
    contact_id: int | None = None,
    plain: bool = False,
) -> dict[str, Any]:
    """The row `queue` inserts, for callers queueing many at once (`queue_many`).

    The payload is made JSON-safe (dates as text) unless `plain` says it already
    is: a handoff's snapshot is normalised once, not once per target.
    """
    return {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "topic": topic,
        "target": target,
        "template": template,
        "handoff_id": handoff_id,
        "contact_id": contact_id,
        "payload": payload if plain else json_safe(payload),
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "log": [],
    }


def queue_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue `notification` rows in one statement, each unless its dedupe key exists."""
    insert_notifications(session, rows)


def json_safe(value: Any) -> Any:
    """`value` as it reads back from a JSON column (dates and other objects as text)."""
    return json.loads(json.dumps(value, default=str))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sales_email_context(
    view: ContactView,
    payload: Mapping[str, Any],
    base_url: str,
    now: datetime,
    timezone: str,
    signup_url: str = "",
) -> dict[str, Any]:
    """What an email to sales renders with: its contact, the notification's payload, the
    reader's timezone (times are shown in it), and for a reader without an inbox
    account a one-time sign-up link.

    One function for the send and for `nurture preview --handoff`, so the
    preview shows what the owner will get.
    """
    payload = dict(payload)
    handoff = dict(payload.pop("handoff", None) or {})
    payload.pop("contact", None)
    return email_context(
        view,
        unsubscribe_url="",
        view_in_browser_url="",
        now=now,
        timezone=timezone,
        handoff=handoff,
        snapshot=payload.pop("snapshot", None) or {},
        inbox_url=f"{base_url}/sales/handoffs/{handoff['id']}"
        if "id" in handoff
        else f"{base_url}/sales",
        signup_url=signup_url,
        **payload,
    )


class Notifier:
    """Delivers queued notifications: webhooks over HTTP, emails through the transport.

    `transport` None: this process sends no email (a notification email waits,
    retried, for a process that can).
    """

    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        transport: Transport | None,
        base_url: str,
        webhook_secret: str,
        client: httpx.Client | None = None,
    ) -> None:
        self.config = project.config
        self.sessions = sessions
        self.transport = transport
        self.base_url = base_url
        self.secret = webhook_secret
        self.client = client or httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
        self.templates = TemplateLibrary(project.templates_dir)

    def due(self, now: datetime, limit: int = 200) -> list[int]:
        with self.sessions() as session:
            return due_notifications(session, now, limit)

    def deliver(self, ids: list[int] | None = None) -> int:
        """Deliver the given (or all due) notifications; returns how many were attempted."""
        now = clock.now()
        ids = ids if ids is not None else self.due(now)
        done = 0
        for notification_id in ids:
            with self.sessions.begin() as session:
                leased = lease_notification(session, notification_id, now, now + LEASE)
            if not leased:
                continue
            with self.sessions.begin() as session:
                notification = notification_by_id(session, notification_id)
                assert notification is not None
                self._attempt(session, notification, now)
            done += 1
        return done

    def _attempt(self, session: Session, notification: Notification, now: datetime) -> None:
        try:
            if notification.kind == "webhook":
                outcome, error, permanent = self._webhook(notification)
            else:
                outcome, error, permanent = self._email(session, notification, now)
        except TemplateError as exc:  # retrying cannot fix a template; validate catches these
            outcome, error, permanent = "template", str(exc), True
        except Exception as exc:  # a network or database blip must not lose the row
            outcome, error, permanent = "error", f"{type(exc).__name__}: {exc}", False
        entry = {"at": now.isoformat(), "attempt": notification.attempts, "outcome": outcome}
        if error:
            entry["error"] = error[:500]
        notification.log = [*(notification.log or []), entry]
        notification.lease_until = None
        if error is None:
            notification.status, notification.sent_at = NotificationStatus.SENT, now
            notification.next_attempt_at, notification.last_error = None, None
        elif permanent or notification.attempts >= MAX_ATTEMPTS:
            notification.status, notification.next_attempt_at = NotificationStatus.FAILED, None
            notification.last_error = error
        else:
            notification.next_attempt_at = now + retry_delay(notification.attempts)
            notification.last_error = error
        _log_attempt(notification, outcome, error)

    def _webhook(self, notification: Notification) -> tuple[str, str | None, bool]:
        body = json.dumps(
            {"event": notification.topic, "id": notification.id, **notification.payload},
            ensure_ascii=False,
        ).encode("utf-8")
        try:
            response = self.client.post(
                notification.target,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Nurture-Event": notification.topic,
                    "X-Nurture-Delivery": str(notification.id),
                    "X-Nurture-Signature": signature(self.secret, body),
                },
            )
        except httpx.HTTPError as exc:
            return "network", f"{type(exc).__name__}: {exc}", False
        code = response.status_code
        if 200 <= code < 300:
            return str(code), None, False
        transient = code >= 500 or code in (408, 425, 429)
        return str(code), f"HTTP {code}", not transient

    def _email(
        self, session: Session, notification: Notification, now: datetime
    ) -> tuple[str, str | None, bool]:
        contact = (
            contact_by_id(session, notification.contact_id) if notification.contact_id else None
        )
        config = self.config
        # An email about no one in particular (the digest) still has a `contact`: its recipient.
        # A recipient without an inbox account gets a sign-up link for their address.
        token = signup_token(session, notification.target, now)
        view = (
            view_of(contact, config, now)
            if contact
            else ContactView({"email": notification.target})
        )
        timezone = timezone_for(session, config, notification.target)
        context = sales_email_context(
            view,
            notification.payload,
            self.base_url,
            now,
            timezone,
            signup_url=f"{self.base_url}/sales/password?token={token}" if token else "",
        )
        rendered = self.templates.render(notification.template or "sales/handoff", context)
        email = OutgoingEmail(
            send_id=f"n{notification.id}",
            from_address=config.sending.from_address,
            to=notification.target,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            reply_to=None,
        )
        transport = self.transport
        if transport is None:
            return "no-transport", "this process has no email transport", False
        result = transport.send_many([email])[0]
        if isinstance(result, Delivery):
            return "sent", None, False
        return "refused", str(result), not result.transient


def _log_attempt(notification: Notification, outcome: str, error: str | None) -> None:
    """One line per email to sales or webhook call: by id, topic and template, never the
    recipient or the URL (they can be personal or hold a token); a refused email's
    error has its addresses masked, an unexpected failure is named by its type only."""
    what = "email to sales" if notification.kind != "webhook" else "webhook"
    if error is None:
        state, level = "sent", logging.INFO
    elif notification.status == NotificationStatus.FAILED:
        state, level = "failed", logging.WARNING
    else:
        state, level = "not sent, will retry", logging.WARNING
    why = (error or "").split(":", 1)[0] if outcome in ("error", "network") else error
    log.log(
        level,
        "%s %s: notification %d, %s%s%s",
        what,
        state,
        notification.id,
        notification.topic,
        f", template {notification.template}" if notification.template else "",
        f" ({why})" if error is not None else "",
        extra={
            "notification_id": notification.id,
            "topic": notification.topic,
            "template": notification.template,
            "outcome": outcome,
        },
    )
