"""`nurture simulate`: the real engine under a virtual clock.

The same enrollment, executor, delivery and ingest code as production runs on
a throwaway SQLite store; only the clock is virtual and jumps from one due
moment to the next (the earliest due enrollment, send or pending event), so
sixty days take seconds. Reactions turn sends into synthetic engagement, drawn
from a seeded generator so a run is reproducible.

Reactions name the send they react to (`send_id`), as a tracking link does, so
the ingest judges them as it judges real traffic (`nurture.lifecycle.traffic`).
Machine traffic (`- machine: 0.4` in the reactions file) is a mail gateway or an
image proxy: the opens and clicks it makes carry a scanner's or a proxy's user
agent, are recorded as a machine's and score nothing, as in production.
"""

from __future__ import annotations

import heapq
import html
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.definitions.loader import Project
from nurture.engine.service import Engine, EngineOptions
from nurture.errors import Problem
from nurture.events import EventType
from nurture.lifecycle.importer import import_contacts
from nurture.lifecycle.incoming import IncomingEvent, InvalidEvent, parse_event
from nurture.lifecycle.ingest import Ingestor
from nurture.lifecycle.traffic import CLASSIFIED, Hit
from nurture.records import Record
from nurture.store import db, reports
from nurture.store import enrollments as work
from nurture.store.handoffs import next_sla_deadlines
from nurture.store.notifications import next_notification_due
from nurture.store.segments import next_recheck_at
from nurture.store.segments import sizes as segment_sizes
from nurture.store.statuses import RUNNING
from nurture.tokens import InvalidToken, Signer
from nurture.tools.reactions import (
    GATEWAY_AGENT,
    IMAGE_PROXY_AGENT,
    MachineTraffic,
    Reaction,
    SimulationError,
)
from nurture.transports import CaptureTransport, Transport
from nurture.transports.base import DeliveryError, Gate
from nurture.transports.message import Delivery, OutgoingEmail
from nurture.transports.mime import BuiltMessage


@dataclass
class SimulationResult:
    """What `Simulation.run` returns: the timeline, funnel, per-workflow outcomes and counts."""

    records: list[Record]
    funnel: dict[str, int]
    workflows: dict[str, Counter[str]]
    sent_by_template: Counter[str]
    import_problems: list[Problem]
    handoffs: Counter[str]  # owner → handoffs opened
    start: datetime
    end: datetime
    #: Opens and clicks by class: {"machine": {"email.clicked": 12, …}, "human": …, "repeat": …}
    signals: dict[str, Counter[str]] = field(default_factory=dict)
    #: Contacts in each segment of nurture.yaml at the end of the run.
    segments: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Pending:
    at: datetime
    order: int
    event: IncomingEvent = field(compare=False)


class Simulation:
    """The real engine on a throwaway SQLite database under a virtual clock: `nurture simulate`.

    `run` jumps the clock from one due moment to the next; `reactions` turn sends into events.
    With `database` (a new SQLite file) the run leaves its data there: `nurture demo`.
    """

    def __init__(
        self,
        project: Project,
        *,
        start: datetime,
        days: float,
        seed: int = 0,
        reactions: Sequence[Reaction | MachineTraffic] = (),
        transport: Transport | None = None,
        on_record: Callable[[Record], None] | None = None,
        database: Path | None = None,
    ) -> None:
        self.project = project
        self.database = database
        self.start = clock.as_utc(start)
        self.end = self.start + timedelta(days=days)
        self.random = random.Random(seed)
        self.reactions: dict[str, list[Reaction]] = {}
        self.machines: list[MachineTraffic] = []
        for reaction in reactions:
            if isinstance(reaction, MachineTraffic):
                self.machines.append(reaction)
            else:
                self.reactions.setdefault(reaction.template, []).append(reaction)
        self.transport = transport or CaptureTransport()
        self._signer = Signer("simulation-key-not-secret")
        self._watched = _LinkNoting(self.transport, self._signer)
        self.records: list[Record] = []
        self.on_record = on_record
        self._pending: list[_Pending] = []
        self._order = count()

    def _record(self, record: Record) -> None:
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)
        if record.kind == "send":
            self._react(record)

    def _react(self, record: Record) -> None:
        template = str(record.details.get("template"))
        send_id = record.details.get("send_id")
        # What a tracking link says about its email: the ingest judges the event with it.
        about: dict[str, Any] = {
            "step": record.step,
            "workflow": record.workflow,
            "template": template,
            **({"send_id": send_id} if isinstance(send_id, int) else {}),
            **({"variant": record.details["variant"]} if record.details.get("variant") else {}),
        }
        for reaction in self.reactions.get(template, []):
            if self.random.random() >= reaction.rate:
                continue
            self.schedule(
                IncomingEvent(
                    id=f"sim-{next(self._order)}",
                    type=reaction.event,
                    at=record.at + reaction.after,
                    email=record.contact,
                    properties={**about, **reaction.properties},
                )
            )
        for machine in self.machines:
            if machine.template not in (None, template):
                continue
            if self.random.random() >= machine.rate:
                continue
            for event in self._machine_events(record, machine, about, send_id):
                self.schedule(event)

    def _machine_events(
        self, record: Record, machine: MachineTraffic, about: dict[str, Any], send_id: Any
    ) -> list[IncomingEvent]:
        """What a gateway (every link and the pixel) or an image proxy (the pixel) fetches
        of this email, with the agent it gives: the ingest classifies them as a machine's."""
        links, pixel = self._watched.seen.get(str(send_id), ((), True))
        agent = GATEWAY_AGENT if machine.by == "gateway" else IMAGE_PROXY_AGENT
        fetched: list[tuple[str, dict[str, Any]]] = [(EventType.EMAIL_OPENED, {})] if pixel else []
        if machine.by == "gateway":
            fetched += [(EventType.EMAIL_CLICKED, {"url": url}) for url in links]
        return [
            IncomingEvent(
                id=f"sim-{next(self._order)}",
                type=kind,
                at=record.at + machine.after,
                email=record.contact,
                properties={**about, **extra},
                hit=Hit(user_agent=agent),
            )
            for kind, extra in fetched
        ]

    def schedule(self, event: IncomingEvent) -> None:
        heapq.heappush(self._pending, _Pending(event.at, next(self._order), event))

    def run(self, contacts: Path, events: Path | None = None) -> SimulationResult:
        with (
            _scratch_database(self.database) as url,
            clock.using(clock.VirtualClock(self.start)) as virtual,
        ):
            assert isinstance(virtual, clock.VirtualClock)
            engine_ = db.create_engine_for(url)
            sessions = db.session_factory(engine_)
            engine = Engine(
                self.project,
                sessions,
                self._watched,
                self._signer,
                EngineOptions(batch_size=1000, webhook_secret="simulation"),
                record=self._record,
            )
            # Webhooks go nowhere in a simulation: a stand-in CRM answers 204.
            engine.notifier = engine.make_notifier(
                httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
            )
            ingestor = engine.lifecycle.ingestor
            config = self.project.config
            report = import_contacts(
                sessions,
                contacts,
                stages=config.stages,
                properties=config.properties,
                on_batch=engine.on_import,
            )
            if events is not None:
                for event in read_events(events, self.start):
                    self.schedule(event)
            self._loop(engine, ingestor, virtual)
            result = self._result(engine, report.rejected)
            engine_.dispose()
            return result

    def _loop(self, engine: Engine, ingestor: Ingestor, virtual: clock.VirtualClock) -> None:
        while True:
            with engine.sessions() as session:
                due = work.next_due_at(session)
                chores = _next_chore(session, engine)
            pending = self._pending[0].at if self._pending else None
            moments = [m for m in (due, chores, pending) if m]
            if not moments:
                return
            moment = max(min(moments), virtual.now())
            if moment > self.end:
                return
            virtual.advance_to(moment)
            progressed = self._ingest_due(engine, ingestor, moment)
            while engine.recheck_segments(moment):
                progressed = True
            while ids := engine.claim_due(moment, 1000):
                engine.advance(ids)
                progressed = True
            if engine.deliver():
                progressed = True
            if engine.housekeeping(moment) and engine.notifier.deliver():
                progressed = True
            if not progressed:
                # Something is due but leased (or otherwise not claimable now):
                # step past it rather than spin on the same moment.
                virtual.advance_to(moment + timedelta(seconds=1))

    def _ingest_due(self, engine: Engine, ingestor: Ingestor, now: datetime) -> bool:
        progressed = False
        while self._pending and self._pending[0].at <= now:
            event = heapq.heappop(self._pending).event
            with engine.sessions.begin() as session:
                try:
                    ingestor.ingest_one(session, event, "simulation")
                except InvalidEvent as exc:
                    self._record(
                        Record(
                            event.at,
                            "reject",
                            0,
                            event.email or "",
                            details={"event": event.type, "reason": str(exc)},
                        )
                    )
            progressed = True
        return progressed

    def _result(self, engine: Engine, problems: list[Problem]) -> SimulationResult:
        config = self.project.config
        with engine.sessions() as session:
            funnel = {stage: 0 for stage in config.stages}
            for stage, number in reports.contacts_per_stage(session, config.stages[0]).items():
                funnel[stage] = funnel.get(stage, 0) + number
            workflows: dict[str, Counter[str]] = {}
            for name, status, reason, number in reports.enrollment_outcomes(session):
                counter = workflows.setdefault(name, Counter())
                counter["enrolled"] += number
                label = status if status in RUNNING else f"{status}:{reason}"
                counter[label] += number
            sent: Counter[str] = Counter(reports.sent_per_template(session))
            handoffs: Counter[str] = Counter()
            for owner, number in reports.handoffs_per_owner(session).items():
                handoffs[owner or "(unassigned)"] = number
            signals: dict[str, Counter[str]] = {}
            for kind, traffic, number in reports.events_by_traffic(session, sorted(CLASSIFIED)):
                signals.setdefault(traffic, Counter())[kind] += number
            sizes = segment_sizes(session)
            segments = {name: sizes.get(name, 0) for name in config.segments}
        return SimulationResult(
            self.records,
            funnel,
            workflows,
            sent,
            problems,
            handoffs,
            self.start,
            self.end,
            signals,
            segments,
        )


_TRACKED = re.compile(r"""(?:href|src)=["']([^"']*/t/([co])/([A-Za-z0-9_.-]+?)(?:\.gif)?)["']""")


class _LinkNoting(Transport):
    """The simulation's transport: each email goes on to `inner`, its tracked links (their
    targets) and whether it has the open pixel noted by send id on the way, for the
    gateways of `MachineTraffic` to follow."""

    def __init__(self, inner: Transport, signer: Signer) -> None:
        self.inner = inner
        self._signer = signer
        self.seen: dict[str, tuple[tuple[str, ...], bool]] = {}

    def _note(self, email: OutgoingEmail) -> OutgoingEmail:
        links: list[str] = []
        pixel = False
        for _, kind, token in _TRACKED.findall(html.unescape(email.html)):
            if kind == "o":
                pixel = True
                continue
            try:
                target = self._signer.verify("click", token).get("u")
            except InvalidToken:
                continue
            if isinstance(target, str) and target not in links:
                links.append(target)
        self.seen[email.send_id] = (tuple(links), pixel)
        return email

    def send(
        self,
        email: OutgoingEmail,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> Delivery:
        return self.inner.send(self._note(email), before_deliver, gate)

    def send_many(
        self,
        emails: Iterable[OutgoingEmail],
        on_result: Callable[[int, Delivery | DeliveryError], None] | None = None,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> list[Delivery | DeliveryError]:
        return self.inner.send_many(
            (self._note(email) for email in emails), on_result, before_deliver, gate
        )

    def close(self) -> None:
        self.inner.close()

    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        raise AssertionError("the inner transport delivers")  # send and send_many go there


def _next_chore(session: Session, engine: Engine) -> datetime | None:
    """The next SLA deadline, notification or segment re-check due: the virtual clock
    stops there too."""
    notification = next_notification_due(session)
    moments = [notification] if notification else []
    if engine.project.config.segments and (recheck := next_recheck_at(session)):
        moments.append(recheck)
    handoff = engine.project.config.handoff
    if handoff is not None:
        unreminded, unescalated = next_sla_deadlines(session)
        if unreminded:
            moments.append(unreminded)
        delay = handoff.sla.escalation_delay
        if delay is not None and handoff.sla.escalate_to and unescalated:
            moments.append(unescalated + delay)
    return min(moments) if moments else None


#: A simulation's events may lie anywhere in its future: a "now" far enough ahead that
#: `parse_event`'s "not in the future" check never fires, yet with room for its margin
#: (`datetime.max` overflowed when the check added five minutes to it).
_NO_FUTURE_LIMIT = datetime(9999, 1, 1)


def read_events(path: Path, start: datetime) -> list[IncomingEvent]:
    """Every event of a JSON Lines file, or every problem in it: never a part."""
    import json

    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SimulationError(f"{path}: {exc.strerror}") from None
    problems = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(
                parse_event(
                    json.loads(line), now=_NO_FUTURE_LIMIT.replace(tzinfo=start.tzinfo), start=start
                )
            )
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg})")
        except InvalidEvent as exc:
            problems.append(f"{path}:{number}: {exc}")
    if problems:
        raise SimulationError("\n".join(problems))
    return events


@contextmanager
def _scratch_database(kept: Path | None = None) -> Iterator[str]:
    if kept is not None:
        url = f"sqlite:///{kept}"
        db.upgrade(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="nurture-simulate-") as folder:
        url = f"sqlite:///{Path(folder) / 'simulation.sqlite3'}"
        db.upgrade(url)
        yield url
