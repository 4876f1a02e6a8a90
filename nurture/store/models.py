"""The tables: the one source of truth for contacts, enrollments and what happened.

Portable across SQLite (the embedded default) and PostgreSQL on purpose: the
same models, the same migrations, no second implementation. Three choices keep
that honest:

- `UTCDateTime` makes every timestamp timezone-aware UTC when it is read back.
  SQLite stores no offset and hands back naive datetimes; PostgreSQL hands them
  back in the session's time zone. Either would leak into comparisons with
  `nurture.clock.now()` and fail (naive) or drift (local time).
- `JSONColumn` is JSON everywhere and JSONB on PostgreSQL (indexable, compact).
  JSON values are replaced, never mutated in place: assign a new dict or list,
  or the ORM will not see the change.
- The `MetaData` carries a naming convention so every constraint and index has
  a deterministic name; alembic's batch mode on SQLite recreates tables and
  needs names to find constraints again.

The unique keys are load-bearing: `sends.claim_key`, `events.event_id` and
`score_ledger.ledger_key` are what turn at-least-once delivery into
exactly-once effects (a second insert fails instead of sending, ingesting or
scoring twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

import nurture.clock as clock
from nurture.contacts.view import ContactView
from nurture.store.statuses import (
    EnrollmentStatus,
    HandoffStatus,
    NotificationStatus,
    SendStatus,
)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Primary keys: 64-bit on PostgreSQL (events grow without bound); plain
#: INTEGER on SQLite, the only type that aliases the rowid and autoincrements.
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive values written are taken as UTC (as `clock.as_utc` does); on SQLite
    the offset is dropped before storage so stored strings compare in order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = clock.as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else clock.as_utc(value)


def JSONColumn(*, nullable: bool = False) -> TypeEngine[Any]:
    """JSON, stored as JSONB on PostgreSQL; Python None is SQL NULL when nullable."""
    return JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of every table, and the metadata alembic migrates.

    Its naming convention names every constraint; its type map stores every `datetime` as a
    `UTCDateTime` (see the module docstring).
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        int: Integer(),
        str: String(),
        float: Float(),
    }


def _contact_fk(*, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=nullable)


class Contact(Base):
    """A person nurture may write to.

    `stage` NULL means the first stage of the project's ladder, so a project
    can rename or reorder stages without rewriting every new contact.
    `source` says where the contact came from (``import:contacts.csv:12``,
    ``event:evt-123``, ``api``) for audits and "why is this person here?".
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)  # stripped + lowercased
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    company: Mapped[str | None]
    timezone: Mapped[str | None]
    owner: Mapped[str | None]
    stage: Mapped[str | None]
    #: fit_score + engagement_score as of `score_updated_at`; engagement decays
    #: from there (see nurture.lifecycle.score_rules), fit does not.
    score: Mapped[float] = mapped_column(default=0.0)
    fit_score: Mapped[float] = mapped_column(default=0.0, server_default="0")
    engagement_score: Mapped[float] = mapped_column(default=0.0, server_default="0")
    score_updated_at: Mapped[datetime | None]
    #: The last engagement signal (open, click, visit…): drives temperature.
    last_engaged_at: Mapped[datetime | None]
    #: granted / legitimate_interest / withdrawn / unknown
    consent_status: Mapped[str] = mapped_column(default="unknown")
    consent_basis: Mapped[str | None]
    consent_source: Mapped[str | None]
    consent_at: Mapped[datetime | None]
    consent_proof: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONColumn(), default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONColumn(), default=list)
    source: Mapped[str | None]
    suppressed_at: Mapped[datetime | None]
    suppression_reason: Mapped[str | None]
    #: Nurture email paused at the contact's request (unsubscribe page): sends
    #: wait until then, like a suppression that ends (see nurture.delivery.consent).
    paused_until: Mapped[datetime | None]
    #: Soft bounces since the last sign the mailbox works (delivered, opened,
    #: clicked); `sending.soft_bounce_limit` of them suppress the contact.
    soft_bounces: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Set when the person's data was erased (GDPR); the row stays, anonymised.
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    def view(
        self,
        stages: Sequence[str],
        declared: Iterable[str] = (),
        *,
        score: float | None = None,
        temperature: str | None = None,
    ) -> ContactView:
        """What expressions and templates see: fields and custom properties as one.

        `stages` is the project's ladder (NULL stage reads as the first one);
        `declared` the custom property names, which read as None when unset.
        `score` and `temperature` are as of now (see `nurture.lifecycle.scoring.view_of`).
        """
        stage = self.stage or (stages[0] if stages else None)
        fields: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "company": self.company,
            "stage": stage,
            "stage_index": stages.index(stage) if stage in stages else None,
            "score": self.score if score is None else score,
            "temperature": temperature,
            "timezone": self.timezone,
            "owner": self.owner,
            "consent": self.consent_status,
            "tags": list(self.tags),
            "created_at": self.created_at,
        }
        return ContactView(fields, self.properties, declared=declared)


class StageHistory(Base):
    """Every stage change with its cause, for `explain` and time-in-stage reports."""

    __tablename__ = "stage_history"
    __table_args__ = (Index("ix_stage_history_contact_id_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = _contact_fk()
    from_stage: Mapped[str | None]
    to_stage: Mapped[str]
    at: Mapped[datetime] = mapped_column(default=clock.now)
    cause: Mapped[str]  # import, score, event, handoff.rejected, manual…
    details: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))


class WorkflowVersion(Base):
    """A workflow file as it was when an enrollment started on it.

    Stored by content hash so unchanged files map to one row, and an enrollment
    keeps running the definition it began with after the file is edited.
    `deployed_at` is set by `nurture apply`: the newest deployed row of a name
    is what `nurture plan` compares the file with (see `nurture.tools.deploy`).
    """

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("name", "content_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str]
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of `source`
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    deployed_at: Mapped[datetime | None]


class Enrollment(Base):
    """One contact's journey through one workflow.

    Waits are rows, not broker delays: the scheduler claims enrollments whose
    `next_run_at` is due, setting `lease_until` so a crashed worker's claim
    expires. `visit` counts executed steps and is part of the send claim key,
    so a loop that sends the same step twice is two sends, a retry is one.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        Index(
            "ix_enrollments_due",
            "next_run_at",
            postgresql_where=text("next_run_at IS NOT NULL"),
            sqlite_where=text("next_run_at IS NOT NULL"),
        ),
        Index("ix_enrollments_contact_id_workflow", "contact_id", "workflow"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = _contact_fk()
    workflow: Mapped[str]
    workflow_version_id: Mapped[int] = mapped_column(BigId, ForeignKey("workflow_versions.id"))
    step: Mapped[str | None]  # current step id; NULL before the first step
    visit: Mapped[int] = mapped_column(default=0)
    #: active / waiting / completed / exited
    status: Mapped[str] = mapped_column(default=EnrollmentStatus.ACTIVE)
    waiting_for: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))
    next_run_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    ended_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None]


class Send(Base):
    """The send ledger: a row is claimed (unique `claim_key`) before mail leaves.

    `claim_key` is ``"<enrollment_id>:<step>:<visit>"`` for workflow sends; a
    duplicate insert raises IntegrityError, which the actor treats as "already
    sent or being sent". Also what frequency caps count.
    """

    __tablename__ = "sends"
    __table_args__ = (
        Index("ix_sends_contact_id_claimed_at", "contact_id", "claimed_at"),
        Index("ix_sends_message_id", "message_id"),  # ESP webhooks match sends by it
        Index(
            "ix_sends_due",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL"),
        ),
        # A variant test's sends, for its winner and its report; other sends are not indexed.
        Index(
            "ix_sends_variant",
            "workflow",
            "step",
            "variant",
            postgresql_where=text("variant IS NOT NULL"),
            sqlite_where=text("variant IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    claim_key: Mapped[str] = mapped_column(unique=True)
    enrollment_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("enrollments.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int] = _contact_fk()
    workflow: Mapped[str | None]
    step: Mapped[str | None]
    template: Mapped[str]
    subject: Mapped[str | None]
    #: claimed / sent / failed / skipped
    status: Mapped[str] = mapped_column(default=SendStatus.CLAIMED)
    message_id: Mapped[str | None]
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    #: Delivery attempts so far; transient failures retry with backoff up to a limit.
    attempts: Mapped[int] = mapped_column(default=0)
    #: When delivery is due (again); NULL once sent, failed or skipped.
    next_attempt_at: Mapped[datetime | None]
    #: Held by the worker delivering it; an expired lease means the worker died.
    lease_until: Mapped[datetime | None]
    #: The variant sent, when the step is an A/B test (`send: {variants: …}`).
    variant: Mapped[str | None]


class ExperimentArm(Base):
    """The group an enrollment drew in an experiment: a split's arm (`experiment` is the
    step id) or the workflow's holdout (`@holdout`: `holdout` or `treated`).

    `stage` is the contact's stage when drawn: the report compares how many of each
    group moved up from it. One row per enrollment and experiment.
    """

    __tablename__ = "experiment_arms"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "experiment"),
        Index("ix_experiment_arms_workflow_experiment", "workflow", "experiment"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("enrollments.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = _contact_fk()
    workflow: Mapped[str]
    experiment: Mapped[str]
    arm: Mapped[str]
    stage: Mapped[str | None]
    at: Mapped[datetime] = mapped_column(default=clock.now)


class ExperimentWinner(Base):
    """A variant test's winner, decided once and kept: every later send of the step is it.

    `test` tells tests of one step apart (`nurture.engine.assignment.test_of`: its
    variants' names and templates), so a new challenger is a new test. `details` holds
    the figures it was decided on (sends, successes, rates, p-values).
    """

    __tablename__ = "experiment_winners"
    __table_args__ = (UniqueConstraint("workflow", "step", "test"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow: Mapped[str]
    step: Mapped[str]
    test: Mapped[str]
    variant: Mapped[str]
    metric: Mapped[str]
    decided_at: Mapped[datetime] = mapped_column(default=clock.now)
    details: Mapped[dict[str, Any]] = mapped_column(JSONColumn(), default=dict)


class Event(Base):
    """The event log, idempotent by the external `event_id`; `raw` keeps the payload."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_contact_id_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(unique=True)
    type: Mapped[str]
    at: Mapped[datetime]
    contact_id: Mapped[int | None] = _contact_fk(nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONColumn(), default=dict)
    raw: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))
    source: Mapped[str | None]  # api, import, tracking, webhook:<provider>…
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    #: Who made it (`nurture.events.Traffic`): only a person's signals score by default.
    traffic: Mapped[str] = mapped_column(default="human", server_default="human")
    traffic_reason: Mapped[str | None]  # why machine or repeat: "user agent: curl"…


class ScoreEntry(Base):
    """One change of score, keyed so that replaying an event scores it once.

    `ledger_key` is e.g. ``"event:<event_id>:rule:<n>"``; `event_id` is the
    external id (`events.event_id`) when an event caused the change.
    """

    __tablename__ = "score_ledger"
    __table_args__ = (Index("ix_score_ledger_contact_id_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = _contact_fk()
    ledger_key: Mapped[str] = mapped_column(unique=True)
    event_id: Mapped[str | None]
    rule: Mapped[str]
    kind: Mapped[str]  # engagement / fit / decay / manual / revoked
    points: Mapped[float]
    score_after: Mapped[float]
    at: Mapped[datetime] = mapped_column(default=clock.now)


class SegmentMember(Base):
    """One contact's standing in one segment of nurture.yaml, kept current as events
    arrive and contacts change (`nurture.lifecycle.segments`).

    `member` is the current flag; `entered_at` / `left_at` the latest entry and
    exit (every one is also a `segment.entered` / `segment.exited` event).
    `recheck_at` is when a counted event leaves the segment's `within` window
    and the standing may change with nothing else happening: the scheduler
    re-judges the rows due, never every contact. Rows exist only for contacts
    that are or were in the segment, or have such a moment ahead.
    """

    __tablename__ = "segment_members"
    __table_args__ = (
        UniqueConstraint("contact_id", "segment"),
        Index("ix_segment_members_segment_member", "segment", "member"),
        Index(
            "ix_segment_members_recheck_at",
            "recheck_at",
            postgresql_where=text("recheck_at IS NOT NULL"),
            sqlite_where=text("recheck_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = _contact_fk()
    segment: Mapped[str] = mapped_column(String(100))
    member: Mapped[bool] = mapped_column(Boolean())
    entered_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    recheck_at: Mapped[datetime | None]


class Handoff(Base):
    """A contact handed to sales: who owns it, by when it must be accepted."""

    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_contact_id", "contact_id"),
        Index("ix_handoffs_status_sla_due_at", "status", "sla_due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = _contact_fk()
    #: open / accepted / rejected
    status: Mapped[str] = mapped_column(default=HandoffStatus.OPEN)
    owner: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sla_due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    decided_by: Mapped[str | None]
    #: Every action on this handoff: [{at, action, by, reason}], oldest first.
    actions: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))


class RoundRobin(Base):
    """Where each round-robin rotation stands; advanced atomically, so it survives
    restarts and several workers never hand two leads to the same turn."""

    __tablename__ = "round_robin"

    name: Mapped[str] = mapped_column(primary_key=True)
    position: Mapped[int]


class Notification(Base):
    """The outbox for messages to sales and CRMs: webhooks and emails.

    `dedupe_key` makes each one exist once (a handoff notifies each target
    once, whatever retries happen); delivery is retried with backoff like a
    send, and every attempt is appended to `log` (the delivery log).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(unique=True)
    kind: Mapped[str]  # webhook / email
    topic: Mapped[
        str
    ]  # handoff.created, handoff.reminder, handoff.escalated, stage.changed, digest
    target: Mapped[str]  # a URL or an email address
    template: Mapped[str | None]
    handoff_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("handoffs.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int | None] = _contact_fk(nullable=True)
    payload: Mapped[Any] = mapped_column(JSONColumn())
    #: pending / sent / failed
    status: Mapped[str] = mapped_column(default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[Any | None] = mapped_column(JSONColumn(nullable=True))


class Suppression(Base):
    """The suppression list: addresses never to email, whatever the transport.

    Keyed by `email_hash` (SHA-256 of the normalised address, see
    `nurture.delivery.suppression`), so an entry outlives the contact: once a person
    is erased, `email` is NULL and only the hash remains, which is enough to
    create a later import of the same address suppressed. The contact's own
    `suppressed_at` / `suppression_reason` mirror it for the send-time check.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The address in clear while we may keep it; NULL once erased.
    email: Mapped[str | None]
    #: bounced / complained / unsubscribed / soft-bounced / manual / erased
    reason: Mapped[str]
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None]  # event:<id>, cli, erase…
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class SiteVisitor(Base):
    """A browser on the company's site, by the random id its first-party cookie holds
    (`nurture.js`), and the contact it is known to be once a tracked click or a form
    told us. Link rows (`kind` "link") are the opaque references a tracked click
    hands the script: they only point at a contact."""

    __tablename__ = "site_visitors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="browser")  # browser / link
    contact_id: Mapped[int | None] = _contact_fk(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    seen_at: Mapped[datetime] = mapped_column(default=clock.now)


class SiteVisit(Base):
    """A page an anonymous browser viewed: kept `tracking.visitor_window`, then either
    recorded for the contact it turns out to be, or deleted."""

    __tablename__ = "site_visits"
    __table_args__ = (Index("ix_site_visits_visitor_id_at", "visitor_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("site_visitors.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONColumn(), default=dict)


class WebhookReplay(Base):
    """A signed webhook already accepted, by its provider's replay key (Mailgun's
    signature token, an SNS message id, a SendGrid signature), until `expires_at`.

    Shared by every web process: the unique key is what lets exactly one of
    several concurrent posts of one signed request through
    (`nurture.store.webhook_replays`). Rows past `expires_at` are deleted; by
    then the provider's own freshness rule refuses the request anyway.
    """

    __tablename__ = "webhook_replays"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Account(Base):
    """A person of the sales team, who signs in to the inbox and acts on handoffs.

    `email` (canonical form) is who the handoffs' `owner` names and who the action
    log says acted. `role`: ``sales`` (their own handoffs), ``lead`` (all of them),
    ``admin`` (all, and the accounts). Only an Argon2 hash of the password is kept;
    None until the person sets one through their one-time link.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    #: An IANA zone (Europe/Paris): the times this person is shown.
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16), default="fr")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    disabled_at: Mapped[datetime | None]


class AccountSession(Base):
    """A signed-in browser, server-side so that logging out, disabling the account or
    changing its password ends it. `id` is the SHA-256 of the cookie's random token:
    the table alone opens no session."""

    __tablename__ = "account_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    #: The last request: the idle expiry counts from here.
    seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    #: The absolute expiry, whatever the activity.
    expires_at: Mapped[datetime]


class AccountLink(Base):
    """A one-time link to set a password: a new account's, a reset's (`account_id`),
    or a sign-up offered to a handoff owner who has no account yet (`email` only).
    `id` is the SHA-256 of the link's random token; the row goes once used."""

    __tablename__ = "account_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: password / signup
    purpose: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320), index=True)
    account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("accounts.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed sign-ins per account (``account:<email>``) and per client address
    (``address:<ip>``): the growing delay, and the account's lockout (`locked_at`)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime]
    locked_at: Mapped[datetime | None]
