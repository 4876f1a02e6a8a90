"""The engine: claim due enrollments, decide, persist the decision, deliver.

One `Engine` serves the Dramatiq actors, `nurture run`, `simulate` and the
tests: the same code path everywhere (DESIGN.md: "the same code paths, not a
second implementation"). A batch of enrollments is advanced in one
transaction: load, run the pure executor on each, write each new state with
an optimistic check (another worker may have advanced it first), apply the
effects, claim the sends — then, after commit, deliver those sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.definitions.workflow import parse_workflow
from nurture.delivery.consent import contact_block, paused_until
from nurture.delivery.deliverer import SEND_LEASE, ClaimedSend, Deliverer
from nurture.delivery.links import Links
from nurture.delivery.pace import Pace
from nurture.delivery.policy import Deferral, may_send
from nurture.engine import executor as ex
from nurture.engine.assignment import Winners
from nurture.engine.effects import apply_effects
from nurture.engine.enrollment import Enroller, EnrollmentListener, VersionIds
from nurture.engine.winners import WinnerWatch
from nurture.errors import ConfigurationError
from nurture.events import EventView
from nurture.lifecycle.importer import ImportedBatch
from nurture.lifecycle.notifications import Notifier
from nurture.lifecycle.service import Lifecycle
from nurture.records import Recorder, discard
from nurture.store import enrollments as work
from nurture.store import sends as ledger
from nurture.store.contacts import contacts_by_id
from nurture.store.events import events_since
from nurture.store.models import Contact, Enrollment, Event
from nurture.store.segments import segments_of
from nurture.store.statuses import EnrollmentStatus
from nurture.store.workflows import workflow_version_sources
from nurture.tokens import Signer
from nurture.transports import Transport

ENROLLMENT_LEASE = timedelta(minutes=2)


@dataclass
class EngineOptions:
    """How an `Engine` runs: from the settings (`build_engine`), or set by simulate and tests."""

    base_url: str = "http://localhost:8000"
    enrollment_lease: timedelta = ENROLLMENT_LEASE
    send_lease: timedelta = SEND_LEASE
    batch_size: int = 200
    #: Signs outbound webhooks (X-Nurture-Signature); None: notifications can't be sent.
    webhook_secret: str | None = None
    #: The send rate (`sending.rate`, `warmup`) in real time; None: unlimited (simulate,
    #: tests on a virtual clock).
    pace: Pace | None = None


@dataclass
class AdvanceReport:
    """What `Engine.advance` did: advanced, lost to another worker (`conflicts`), sends claimed."""

    advanced: int = 0
    conflicts: int = 0
    sends: list[int] = field(default_factory=list)


#: How long after its previous email may be done a held-back email is looked at again.
PREVIOUS_EMAIL_MARGIN = timedelta(minutes=1)


class Engine:
    """Flow 1: claims due enrollments, runs the executor, writes decisions and effects, delivers.

    It owns the `Lifecycle` (flow 2) and hands it an `EnrollmentListener`, so stage moves and events
    enroll contacts. One engine serves the workers, `nurture run`, `simulate` and the tests.
    """

    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        transport: Transport | None = None,
        signer: Signer | None = None,
        options: EngineOptions | None = None,
        record: Recorder = discard,
    ) -> None:
        """`transport` and `signer` are needed only to send: importing and
        ingesting (from a marketer's laptop, say) need neither."""
        self.project = project
        self.sessions = sessions
        self.transport = transport
        self.signer = signer
        self.options = options or EngineOptions()
        self.record = record
        self.version_ids = VersionIds()
        self.enroller = Enroller(project, self.version_ids, record)
        self.winners = WinnerWatch(project, sessions, record)
        self._deliverer: Deliverer | None = None
        self._notifier: Notifier | None = None
        self._by_version: dict[int, m.Workflow | None] = {}
        # Flow 2, told through this listener when workflows may care (stage moves,
        # events, changes, recycled leads); it never calls back into the engine.
        self.lifecycle = Lifecycle(
            project.config, [EnrollmentListener(self.enroller, project)], record
        )
        self.handoffs = self.lifecycle.handoffs

    @property
    def deliverer(self) -> Deliverer:
        if self._deliverer is None:
            if self.transport is None or self.signer is None:
                raise ConfigurationError(
                    "this engine was built without a transport: it cannot send"
                )
            self._deliverer = Deliverer(
                self.project,
                self.sessions,
                self.transport,
                Links(self.signer, self.options.base_url),
                self.record,
                lease=self.options.send_lease,
                pace=self.options.pace,
            )
        return self._deliverer

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            self._notifier = self.make_notifier()
        return self._notifier

    @notifier.setter
    def notifier(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def make_notifier(self, client: httpx.Client | None = None) -> Notifier:
        """The notifier for this engine's project, sessions and transport; `client` is the
        HTTP client webhooks go through (a stand-in CRM in tests and `simulate`)."""
        if not self.options.webhook_secret:
            raise ConfigurationError("this engine has no webhook secret: it cannot notify")
        return Notifier(
            self.project,
            self.sessions,
            self.transport,
            self.options.base_url,
            self.options.webhook_secret,
            client,
        )

    def housekeeping(self, now: datetime | None = None) -> list[int]:
        """SLA reminders and escalations; returns the notifications now due."""
        moment = now or clock.now()
        with self.sessions.begin() as session:
            self.handoffs.check_sla(session, moment)
            if self.project.config.handoff and self.handoffs.weekly_digest_due(session, moment):
                self.handoffs.queue_digests(session, moment)
        return self.notifier.due(moment)

    def recheck_segments(self, now: datetime | None = None) -> int:
        """Segment standings whose counted events leave their window now, judged again
        (the scheduler's tick); how many contacts were re-judged."""
        segments = self.lifecycle.segments
        if segments is None:
            return 0
        with self.sessions.begin() as session:
            return segments.recheck(session, now or clock.now())

    # -- contacts changed outside the engine ------------------------------------------

    def on_import(self, session: Session, batch: ImportedBatch) -> None:
        """The hook a contacts import calls in each batch's transaction (`on_batch`)."""
        self.lifecycle.contacts_imported(session, batch)

    # -- scheduling ----------------------------------------------------------------

    def claim_due(self, now: datetime | None = None, limit: int | None = None) -> list[int]:
        """Lease due enrollments (the scheduler's half of a tick)."""
        with self.sessions.begin() as session:
            return work.claim_due_enrollments(
                session,
                now or clock.now(),
                limit or self.options.batch_size,
                self.options.enrollment_lease,
            )

    def claim_due_sends(self, now: datetime | None = None, limit: int | None = None) -> list[int]:
        """Sends due again (retries, or orphaned by a dead worker): their ids, not leased.

        The delivering worker leases them itself; see `Deliverer.deliver`.
        """
        with self.sessions() as session:
            return ledger.due_sends(session, now or clock.now(), limit or self.options.batch_size)

    # -- advancing ------------------------------------------------------------------

    def advance(self, enrollment_ids: Sequence[int], deliver: bool = True) -> AdvanceReport:
        """Advance these enrollments as far as they go now; deliver what they send.

        Decisions are written a round at a time, one statement per round
        (`work.save_enrollments`). A contact with several enrollments in the
        batch has them in successive rounds, so each decision sees what the
        previous one did to the contact (fields set, points added, emails
        counted against the cap).
        """
        now = clock.now()
        report = AdvanceReport()
        # An engine that cannot send says so before anything is claimed in its name.
        deliverer = self.deliverer if deliver else None
        winners = self.winners.current(now)
        with self.sessions.begin() as session:
            enrollments = work.load_enrollments(session, enrollment_ids)
            contacts = contacts_by_id(session, {e.contact_id for e in enrollments})
            events = events_since(session, _waiting_since(enrollments))
            recent = self._recent_sends(session, contacts, now)
            pending = ledger.pending_sends(session, contacts)
            # `in_segment` and `wait_for: {segment: …}` read the standings as the batch began.
            member_of = segments_of(session, contacts) if self.project.config.segments else {}
            running = [
                e
                for e in enrollments
                if e.contact_id in contacts
                and e.status not in (EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED)
            ]
            claims: list[dict[str, Any]] = []
            for round_ in _rounds(running):
                decided = [
                    (
                        e,
                        contacts[e.contact_id],
                        self._decide(
                            session,
                            e,
                            contacts[e.contact_id],
                            events,
                            recent,
                            pending,
                            now,
                            winners,
                            member_of.get(e.contact_id, frozenset()),
                        ),
                    )
                    for e in round_
                ]
                saved = work.save_enrollments(session, [self._write(e, d) for e, _, d in decided])
                for enrollment, contact, decision in decided:
                    if enrollment.id not in saved:
                        report.conflicts += 1
                        continue
                    report.advanced += 1
                    recent.setdefault(contact.id, []).extend(
                        now for e in decision.effects if isinstance(e, ex.SendEmail)
                    )
                    claims += apply_effects(
                        self.lifecycle, self.record, session, enrollment, contact, decision, now
                    )
            if deliver and claims:
                # Leased to this worker from the start: it delivers them right after
                # commit, and nobody else takes them unless it dies first.
                lease_until = clock.now() + self.options.send_lease
                for claim in claims:
                    claim |= {"lease_until": lease_until, "attempts": 1}
            claimed = ledger.claim_sends(session, claims)
            report.sends = list(claimed.values())
            if deliver and claimed:
                session.flush()
                session.expunge_all()  # handed to delivery as they are now
        if deliver and report.sends:
            sends = [
                ClaimedSend(
                    claimed[claim["claim_key"]],
                    claim["contact_id"],
                    claim["enrollment_id"],
                    claim["workflow"],
                    claim["step"],
                    claim["template"],
                    claim["attempts"],
                    claim["variant"],
                )
                for claim in claims
                if claim["claim_key"] in claimed
            ]
            by_id = {e.id: e for e in enrollments}
            assert deliverer is not None
            deliverer.deliver_claimed(sends, contacts, by_id, now)
        return report

    def deliver(self, send_ids: Sequence[int] | None = None) -> int:
        return self.deliverer.deliver(send_ids, clock.now())

    def workflow(self, session: Session, enrollment: Enrollment) -> m.Workflow | None:
        """The definition this enrollment runs: the version it started on."""
        version = enrollment.workflow_version_id
        if version not in self._by_version:
            current = self.project.workflows.get(enrollment.workflow)
            if current is not None and self.version_ids(session, current) == version:
                self._by_version[version] = current
            else:
                sources = workflow_version_sources(session, [version])
                name, source = sources[version]
                parsed, _problems = parse_workflow(
                    source, f"<{name} version {version}>", self.project.config
                )
                self._by_version[version] = parsed
        return self._by_version[version]

    def _decide(
        self,
        session: Session,
        enrollment: Enrollment,
        contact: Contact,
        events: Mapping[int, list[Event]],
        recent: Mapping[int, list[datetime]],
        pending: Mapping[int, datetime],
        now: datetime,
        winners: Winners | None = None,
        segments: frozenset[str] = frozenset(),
    ) -> ex.Decision:
        workflow = self.workflow(session, enrollment)
        state = state_of(enrollment)
        if workflow is None or (state.step is not None and state.step not in workflow.step_ids):
            ended = ex.EnrollmentState(
                step=state.step,
                visit=state.visit,
                status=EnrollmentStatus.EXITED,
                exit_reason="definition-invalid",
            )
            return ex.Decision(
                ended, trace=(ex.Trace("exit", state.step, {"reason": "definition-invalid"}),)
            )
        config = self.project.config
        timezone = contact.timezone or config.sending.default_timezone
        inputs = ex.Inputs(
            contact=view_of(contact, config, now),
            now=now,
            stages=config.stages,
            prospect_stage=config.prospect_stage,
            events=[_event_view(e) for e in events.get(contact.id, ())],
            timezone=timezone,
            suppressed=contact_block(contact, config.sending),
            send_gate=self._gate(
                timezone,
                recent.get(contact.id, []),
                paused_until(contact, now),
                pending.get(enrollment.id),
            ),
            winners=winners or {},
            segments=segments,
        )
        return ex.advance(workflow, state, inputs)

    def _gate(
        self,
        timezone: str,
        recent: list[datetime],
        paused: datetime | None = None,
        previous: datetime | None = None,
    ) -> ex.SendGate:
        """Window, cap, the contact's pause, and the workflow's previous email.

        `previous` is when this enrollment's earlier email, claimed but not
        sent yet, may be done (`ledger.pending_sends`): the next email waits
        for it, so a contact never gets a workflow's emails out of order.
        """
        sending = self.project.config.sending
        if (
            sending.window is None
            and sending.frequency_cap is None
            and paused is None
            and previous is None
        ):
            return ex.always_open

        def gate(now: datetime, sent_in_this_advance: int) -> Deferral | None:
            if previous is not None:
                return Deferral(max(previous, now) + PREVIOUS_EMAIL_MARGIN, "previous-email")
            recent_now = [*recent, *[now] * sent_in_this_advance]
            return may_send(sending, timezone, recent_now, now, paused)

        return gate

    def _recent_sends(
        self, session: Session, contacts: Mapping[int, Contact], now: datetime
    ) -> dict[int, list[datetime]]:
        cap = self.project.config.sending.frequency_cap
        if cap is None or not contacts:
            return {}
        return ledger.recent_send_times(session, contacts, now - cap.per)

    @staticmethod
    def _write(enrollment: Enrollment, decision: ex.Decision) -> work.EnrollmentWrite:
        state = decision.state
        waiting = (
            {
                "since": state.waiting_since.isoformat() if state.waiting_since else None,
                "until": state.wait_until.isoformat() if state.wait_until else None,
                "deferred": state.deferred,
            }
            if state.status == EnrollmentStatus.WAITING
            else None
        )
        return work.EnrollmentWrite(
            id=enrollment.id,
            expected_visit=enrollment.visit,
            expected_step=enrollment.step,
            step=state.step,
            visit=state.visit,
            status=state.status,
            waiting_for=waiting,
            next_run_at=decision.next_run_at,
            ended=state.ended,
            ended_at=clock.now() if state.ended else None,
            exit_reason=state.exit_reason if state.ended else None,
            loaded_next_run_at=enrollment.next_run_at,
        )


def state_of(enrollment: Enrollment) -> ex.EnrollmentState:
    waiting = enrollment.waiting_for or {}
    return ex.EnrollmentState(
        step=enrollment.step,
        visit=enrollment.visit,
        status=EnrollmentStatus(enrollment.status),
        waiting_since=_parse(waiting.get("since")),
        wait_until=_parse(waiting.get("until")),
        exit_reason=enrollment.exit_reason,
        deferred=waiting.get("deferred"),
    )


def _parse(value: str | None) -> datetime | None:
    return clock.as_utc(datetime.fromisoformat(value)) if value else None


def _rounds(enrollments: Sequence[Enrollment]) -> list[list[Enrollment]]:
    """The batch in rounds where each contact appears at most once, in batch order."""
    rounds: list[list[Enrollment]] = []
    seen: dict[int, int] = {}
    for enrollment in enrollments:
        index = seen.get(enrollment.contact_id, 0)
        seen[enrollment.contact_id] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(enrollment)
    return rounds


def _waiting_since(enrollments: Sequence[Enrollment]) -> dict[int, datetime]:
    since: dict[int, datetime] = {}
    for enrollment in enrollments:
        moment = _parse((enrollment.waiting_for or {}).get("since"))
        if moment is not None:
            current = since.get(enrollment.contact_id)
            since[enrollment.contact_id] = moment if current is None else min(current, moment)
    return since


def _event_view(event: Event) -> EventView:
    return EventView(event.event_id, event.type, event.at, event.properties, event.traffic)
