"""The statuses the tables' `status` columns hold, one enum per table.

Members are strings (`SendStatus.SENT == "sent"`), so they compare with what
the database returns and bind as plain text; a typo'd status is a name error
at import time, not a row no query ever finds. This module imports nothing, so
the pure executor can use it without loading the database layer.
"""

from __future__ import annotations

from enum import StrEnum


class EnrollmentStatus(StrEnum):
    """Where a contact is in one run of a workflow."""

    #: Due to advance (entered, or woken by an event or a deadline).
    ACTIVE = "active"
    #: On a `wait` or `wait_for` step until `next_run_at` or an event.
    WAITING = "waiting"
    #: Reached the end of the workflow.
    COMPLETED = "completed"
    #: Left early: an `exit` step, the prospect stage, a suppression (`exit_reason`).
    EXITED = "exited"


#: Enrollment statuses of a contact still inside its workflow.
RUNNING: tuple[EnrollmentStatus, ...] = (EnrollmentStatus.ACTIVE, EnrollmentStatus.WAITING)


class SendStatus(StrEnum):
    """One email of the send ledger."""

    #: Claimed (its unique key taken) and due for delivery, perhaps again after a 4xx.
    CLAIMED = "claimed"
    #: Accepted by the relay: out of our hands.
    SENT = "sent"
    #: Refused for good (a 5xx, too many attempts, a template that cannot render).
    FAILED = "failed"
    #: Not sent on purpose: the contact may no longer be emailed.
    SKIPPED = "skipped"


class HandoffStatus(StrEnum):
    """A contact handed to sales."""

    #: Waiting for sales to decide (reminded, then escalated, past its SLA).
    OPEN = "open"
    #: Sales took the lead.
    ACCEPTED = "accepted"
    #: Sales sent it back to nurturing, with a reason (it can be reopened).
    REJECTED = "rejected"


class NotificationStatus(StrEnum):
    """A webhook or an email to sales in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
