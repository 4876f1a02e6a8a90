"""Event ingest: bulk events/s with scoring, stage changes and handoffs; event → exit latency.

Usage: ``python benchmarks/ingest.py [--contacts 20000] [--events 100000]
[--batch-size 1000] [--http-events 20000] [--probes 150] [--probe-rate 10]
[--quiet-probes 15] [--quiet-rate 1] [--worker-threads 4] [--skip-http]
[--skip-latency] [--skip-fast-poll] [--profile]``

Builds a small project in a temporary folder (the example's scoring: opened
+5 once a day, pricing page +15, download +25, demo +40; thresholds lead 20,
mql 70, sql 100, prospect stage sql; a handoff at sql with a round robin of
two owners, a webhook to a sink in this process and an email to the owner;
one workflow per stage: a send then a long wait, the lead one a `wait_for`
click), creates a throwaway PostgreSQL database (dropped at the end, even on
failure), migrates it with `nurture.store.db.upgrade` and loads N contacts
(COPY) spread over subscriber / lead / mql, each already enrolled in its
stage's workflow and waiting. Then:

1. **bulk ingest**: M events (mixed types, a few per contact, activity
   skewed so that some contacts climb one or more stages and some reach sql)
   parsed with `parse_event` and ingested with `Ingestor.ingest_batch`, one
   transaction per batch, in this one process. Instrumented from the outside
   (functions wrapped with timers, nothing edited in nurture) for a
   per-stage breakdown; with ``--profile``, or when the rate is below
   target, a further slice runs under cProfile and the top costs are printed.
2. **HTTP**: more events, same density, through ``POST /v1/events`` (lists of
   1,000) to a real ``nurture serve`` subprocess: what the API adds.
3. **latency**: a real ``nurture worker`` and ``nurture scheduler --interval
   0.2`` (subprocesses, environment as in tests/integration/_services.py,
   Redis database 15, flushed before and after) on the same database. Probe
   contacts are added: mql contacts (score 80) waiting in a 30-day wait, and
   lead contacts waiting in a ``wait_for`` click. Probes arrive at random
   (Poisson) through ``POST /v1/events`` to the ``nurture serve`` process, one
   event per request, first busy (``--probe-rate``/s), then quiet
   (``--quiet-rate``/s, the worker idle in between):

   - *exit*: a ``demo.requested`` lifting an mql contact over the sql
     threshold. Its enrollments are exited and the handoff opened inside the
     ingest transaction, so POST sent → 200 received is event → exit (checked
     afterwards: every probe's enrollment ``exited``/``prospect``, a handoff
     open). Then the scheduler finds the handoff's notifications and the
     worker delivers them: POST sent → handoff webhook received by the sink
     (same clock), and → the owner's email sent (``notifications.sent_at``).
   - *wake*: an ``email.clicked`` on the step a lead contact's ``wait_for``
     waits for. Ingest makes the enrollment due now; the scheduler claims it
     on its next tick, Dramatiq carries it to the worker, which advances it
     (takes ``on_event``, sends the next email, waits again). POST sent →
     the worker began the advance (``sends.claimed_at``), → the new state
     committed (``visit`` changed; polled every 5 ms), → the email written
     (``sends.sent_at``, outbox transport).

   The backlog the bulk phases left (enrollments due after their events, new
   enrollments, handoff notifications) is parked 30 days ahead first, so the
   probes measure the event path, not a drain of 20k queued emails. Unless
   ``--skip-fast-poll``, everything is repeated with the worker's idle poll
   capped at 100 ms (``dramatiq_worker_timeout=100`` in its environment):
   Dramatiq's Redis consumer sleeps up to its worker timeout (1 s by default)
   between polls of an empty queue.

Numbers are for one machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import json
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from _db import temporary_database  # benchmarks/ is on sys.path when run

from nurture.store.workflows import workflow_version_id

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
SECRET = "benchmark-secret-key-0123456789"
API_KEY = "bench-api-key-0123456789"
NURTURE = Path(sys.executable).with_name("nurture")
TARGET_RATE = 5_000  # events/s per process (the target)
TARGET_P99 = 1.0  # seconds

CONFIG = """\
stages: [subscriber, lead, mql, sql, opportunity, customer]
prospect_stage: sql
properties:
  industry: string
scoring:
  rules:
    - event: email.opened
      points: 5
      max_per_day: 1
    - event: page.visited
      when: "'/pricing' in (event.url or '')"
      points: 15
    - event: content.downloaded
      points: 25
    - event: demo.requested
      points: 40
  decay: {{half_life: 30d}}
  thresholds: {{lead: 20, mql: 70, sql: 100}}
handoff:
  at: sql
  assign:
    round_robin: [alice@example.com, bob@example.com]
  notify:
    - webhook: {webhook}
    - email: owner
  sla: {{accept_within: 24h}}
sending:
  from: "Équipe Exemple <bonjour@example.com>"
  reply_to: ventes@example.com
"""

WORKFLOWS = {
    "newsletter": """\
name: newsletter
enroll: {stage: subscriber}
exit:
  when: "contact.stage_index >= stage_index('lead')"
steps:
  - id: letter
    send: x/letter
  - id: pause
    wait: 30d
""",
    "lead-nurture": """\
name: lead-nurture
enroll: {stage: lead}
exit:
  when: "contact.stage_index >= stage_index('mql')"
steps:
  - id: guide
    send: x/guide
  - id: wait-click
    wait_for:
      event: email.clicked
      match: "event.step == 'guide'"
      timeout: 5d
    on_event: case-study
    on_timeout: reminder
  - id: reminder
    send: x/reminder
  - id: pause
    wait: 30d
  - exit: no-engagement
  - id: case-study
    send: x/case-study
  - id: rest
    wait: 30d
""",
    "mql-acceleration": """\
name: mql-acceleration
enroll: {stage: mql}
steps:
  - id: demo
    send: x/demo
  - id: pause
    wait: 30d
""",
}

TEMPLATE = """\
---
subject: "{{{{ contact.first_name }}}}, {title}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{{{ contact.first_name }}}}, {title} pour {{{{ contact.company }}}}.</mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
TEMPLATES = {
    "x/letter": "la lettre du mois",
    "x/guide": "un guide de scoring",
    "x/reminder": "le guide, en bref",
    "x/case-study": "une étude de cas",
    "x/demo": "une démo de 20 minutes",
}
SALES_TEMPLATE = """\
---
subject: "{title} : {{{{ contact.email }}}} ({{{{ contact.company }}}})"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>{title} : {{{{ contact.email }}}}, score {{{{ contact.score | round | int }}}}.</mj-text>
<mj-button href="{{{{ inbox_url }}}}">Accepter ou renvoyer</mj-button>
</mj-column></mj-section></mj-body></mjml>
"""
SALES_TEMPLATES = {"sales/handoff": "Lead à prendre en charge", "sales/reminder": "Rappel"}

#: (stage, share of the contacts, initial score range, workflow, waiting step)
SEED = (
    ("subscriber", 0.60, (0.0, 18.0), "newsletter", "pause"),
    ("lead", 0.30, (20.0, 65.0), "lead-nurture", "wait-click"),
    ("mql", 0.10, (70.0, 95.0), "mql-acceleration", "pause"),
)

#: Event mix of the bulk phases: (type, weight).
MIX = (
    ("email.delivered", 14),
    ("email.opened", 38),
    ("email.clicked", 12),
    ("page.visited", 20),
    ("content.downloaded", 8),
    ("form.submitted", 3),
    ("demo.requested", 2),
)
PAGES = (
    "/pricing",
    "/blog/scoring",
    "/product",
    "/blog/nurturing",
    "/about",
    "/pricing/enterprise",
)
FIRST_NAMES = ("Anne", "Benoît", "Chloé", "Élodie", "François", "Gaëlle", "Hugo", "Inès")


def write_project(root: Path, webhook: str) -> None:
    (root / "workflows").mkdir(parents=True)
    (root / "nurture.yaml").write_text(CONFIG.format(webhook=webhook), encoding="utf-8")
    for name, text in WORKFLOWS.items():
        (root / "workflows" / f"{name}.yaml").write_text(text, encoding="utf-8")
    for pattern, templates in ((TEMPLATE, TEMPLATES), (SALES_TEMPLATE, SALES_TEMPLATES)):
        for name, title in templates.items():
            path = root / "templates" / f"{name}.mjml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(pattern.format(title=title), encoding="utf-8")


class Sink:
    """The CRM: an HTTP server in this process noting when each handoff webhook arrived."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # contact email → perf_counter
        self.count = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    payload = json.loads(body)
                    if payload.get("event") == "handoff.created":
                        sink.received.setdefault(payload["contact"]["email"], arrived)
                sink.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crm"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the database -----------------------------------------------------------------


def version_ids(url: str, project_dir: Path) -> dict[str, int]:
    from nurture.definitions.loader import load_project
    from nurture.store.db import create_engine_for, session_factory

    project = load_project(project_dir)
    engine = create_engine_for(url)
    try:
        with session_factory(engine).begin() as session:
            return {
                name: workflow_version_id(session, w.name, w.content_hash, w.source)
                for name, w in project.workflows.items()
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Seeded:
    email: str
    stage: str
    score: float


def seed(
    url: str,
    versions: dict[str, int],
    people: Sequence[Seeded],
    *,
    scored_at: datetime,
    waiting_since: datetime,
) -> None:
    """Contacts (COPY) already in their stage, each waiting in its stage's workflow."""
    with psycopg.connect(url) as connection:
        with connection.cursor().copy(
            "COPY contacts (email, first_name, last_name, company, stage, score, fit_score,"
            " engagement_score, score_updated_at, last_engaged_at, consent_status, properties,"
            " tags, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n, person in enumerate(people):
                copy.write_row(
                    (
                        person.email,
                        FIRST_NAMES[n % len(FIRST_NAMES)],
                        f"Nom{n}",
                        f"Société {n % 5000}",
                        person.stage,
                        person.score,
                        0.0,
                        person.score,
                        scored_at,
                        scored_at,
                        "granted",
                        '{"industry": "logistique"}',
                        "[]",
                        scored_at,
                        scored_at,
                    )
                )
        emails = [p.email for p in people]
        for stage, _, _, workflow, step in SEED:
            until = waiting_since + (timedelta(days=5) if step == "wait-click" else timedelta(30))
            waiting = json.dumps(
                {"since": waiting_since.isoformat(), "until": until.isoformat(), "deferred": None}
            )
            connection.execute(
                "INSERT INTO enrollments (contact_id, workflow, workflow_version_id, step, visit,"
                " status, waiting_for, next_run_at, started_at)"
                " SELECT id, %s, %s, %s, 1, 'waiting', %s::jsonb, %s, %s FROM contacts"
                " WHERE stage = %s AND email = ANY(%s)",
                (workflow, versions[workflow], step, waiting, until, waiting_since, stage, emails),
            )


def settle(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


COUNTS = {
    "contacts": "SELECT count(*) FROM contacts",
    "events": "SELECT count(*) FROM events",
    "system events": "SELECT count(*) FROM events WHERE source = 'nurture'",
    "ledger": "SELECT count(*) FROM score_ledger",
    "moves": "SELECT count(*) FROM stage_history",
    "to lead": "SELECT count(*) FROM stage_history WHERE to_stage = 'lead'",
    "to mql": "SELECT count(*) FROM stage_history WHERE to_stage = 'mql'",
    "to sql": "SELECT count(*) FROM stage_history WHERE to_stage = 'sql'",
    "moved contacts": "SELECT count(DISTINCT contact_id) FROM stage_history",
    "enrollments": "SELECT count(*) FROM enrollments",
    "exited prospect": "SELECT count(*) FROM enrollments WHERE exit_reason = 'prospect'",
    "handoffs": "SELECT count(*) FROM handoffs",
    "notifications": "SELECT count(*) FROM notifications",
}


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        found = {}
        for key, query in COUNTS.items():
            row = connection.execute(query).fetchone()
            found[key] = int(row[0]) if row else 0
        return found


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


# --- events -----------------------------------------------------------------------


def population(count: int, rng: random.Random) -> list[Seeded]:
    people = []
    for n in range(count):
        draw = rng.random()
        for stage, share, (low, high), _, _ in SEED:  # noqa: B007 - the loop picks `stage`
            if draw < share:
                break
            draw -= share
        score = round(rng.uniform(low, high), 2)
        people.append(Seeded(f"contact{n}@example{n % 97}.com", stage, score))
    return people


class EventSource:
    """Synthetic events in time order, a few per contact, activity skewed (log-normal)."""

    def __init__(self, people: Sequence[Seeded], rng: random.Random) -> None:
        self.rng = rng
        self.emails = [p.email for p in people]
        total = 0.0
        self.cumulative = []
        for _ in people:
            total += rng.lognormvariate(0.0, 1.1)
            self.cumulative.append(total)
        self.kinds = [kind for kind, _ in MIX]
        self.kind_weights = [weight for _, weight in MIX]
        self.serial = 0
        self.new_contacts = 0
        self.sent: list[dict[str, Any]] = []

    def make(
        self, count: int, start: datetime, end: datetime, *, duplicates: float = 0.01
    ) -> list[dict[str, Any]]:
        rng = self.rng
        span = (end - start).total_seconds()
        moments = sorted(rng.uniform(0, span) for _ in range(count))
        emails = rng.choices(self.emails, cum_weights=self.cumulative, k=count)
        kinds = rng.choices(self.kinds, weights=self.kind_weights, k=count)
        events = []
        for offset, email, kind in zip(moments, emails, kinds, strict=True):
            if self.sent and rng.random() < duplicates:
                events.append(rng.choice(self.sent[-5000:]))  # a webhook sent twice
                continue
            self.serial += 1
            properties: dict[str, Any] = {}
            if kind == "email.clicked":
                step = rng.choice(("guide", "letter", "demo"))
                properties = {"step": step, "url": "https://example.com/guide"}
            elif kind == "page.visited":
                properties = {"url": "https://example.com" + rng.choice(PAGES)}
            elif kind == "content.downloaded":
                properties = {"asset": rng.choice(("guide-scoring.pdf", "benchmark-2026.pdf"))}
            elif kind == "form.submitted" and rng.random() < 0.3:
                self.new_contacts += 1
                email = f"new{self.new_contacts}@prospects.example"  # creates the contact
            at = start + timedelta(seconds=offset)
            event = {
                "id": f"evt-{self.serial:08d}",
                "type": kind,
                "at": at.isoformat().replace("+00:00", "Z"),
                "contact": {"email": email},
                "properties": properties,
            }
            events.append(event)
            self.sent.append(event)
        return events


# --- instrumentation ---------------------------------------------------------------


class Timers:
    """Exclusive time per stage: a wrapped function's time minus the wrapped calls it makes.

    An `inclusive` stage keeps what it calls (its wrapped callees are not
    counted apart: a handoff's inserts are the handoff's cost), except `always`
    stages, timed apart wherever they run (a flush writes every dirty contact
    of the batch, whoever triggers it).
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.missing: list[str] = []
        self._stack: list[list[float]] = []
        self._absorbing = 0
        self._undo: list[Callable[[], None]] = []

    def wrap(
        self, owner: Any, name: str, stage: str, *, inclusive: bool = False, always: bool = False
    ) -> None:
        original: Callable[..., Any] | None = getattr(owner, name, None)
        if original is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        raw = owner.__dict__[name] if isinstance(owner, type) else original
        timers = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if timers._absorbing and not always:
                return original(*args, **kwargs)
            frame = [0.0]  # time spent in wrapped callees
            timers._stack.append(frame)
            timers._absorbing += inclusive
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                timers._absorbing -= inclusive
                timers._stack.pop()
                timers.totals[stage] += spent - frame[0]
                timers.calls[stage] += 1
                if timers._stack:
                    timers._stack[-1][0] += spent

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, raw))

    def unwrap(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


STAGES = (
    ("parse", "parse_event (validation → IncomingEvent)"),
    ("resolve", "Ingestor._resolve: contacts by email, new contacts"),
    ("record", "record_events of the batch: INSERT … ON CONFLICT RETURNING"),
    ("usage", "Scoring._usage: capped rules' past uses"),
    ("score", "Scoring._score_event: rules, caps, decay (Python)"),
    ("apply", "Scoring.apply itself: ledger INSERT, climb, loop"),
    ("moves", "Stages.apply itself: stage history INSERT, records"),
    ("exits", "end_nurture: UPDATE enrollments → exited"),
    ("handoff", "open_handoffs, inclusive: owners, snapshots, handoffs, notifications"),
    ("sysevent", "Stages.emit, inclusive: stage.changed/handoff.* rows, enroll"),
    ("enroll", "Enroller.enroll: candidates, past enrollments, INSERT"),
    ("wake", "wake_contacts: UPDATE enrollments due now"),
    ("save", "save_contacts: the batch's contact changes, one UPDATE per column set"),
    ("flush", "Session.flush: new contacts, what the ORM still writes"),
    ("commit", "SessionTransaction.commit (COMMIT, WAL flush)"),
    ("ingest", "ingest_batch itself: rows, outcomes, records, glue"),
)


class Statements:
    """SQL statements the database sees, by kind (first words, table), and their time.

    An executemany counts once: it is one round trip in psycopg 3's pipeline,
    which is what the statement count is a proxy for. The time is from the
    driver call to its return (the round trip and the server's work; for a
    SELECT not the rows' fetching by the ORM).
    """

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.by_kind: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.total = 0
        self._started: list[tuple[str, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    @staticmethod
    def kind(statement: str) -> str:
        words = statement.split(None, 12)
        upper = [w.upper() for w in words]
        for keyword in ("INTO", "UPDATE", "FROM"):
            if keyword in upper[:8]:
                index = upper.index(keyword)
                table = words[index + 1] if index + 1 < len(words) else ""
                return f"{upper[0]} {table}"
        return upper[0] if upper else ""

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._started.append((self.kind(statement), time.perf_counter()))

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kind, started = self._started.pop()
        self.seconds[kind] += time.perf_counter() - started
        self.by_kind[kind] += 1
        self.total += 1

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def report(self, batches: int) -> str:
        per = max(batches, 1)
        lines = [
            f"SQL statements per batch: {self.total / per:.1f},"
            f" {sum(self.seconds.values()) / per * 1e3:.1f} ms in the driver;"
            " per batch: statements, ms, kind"
        ]
        for kind, count in sorted(self.by_kind.items(), key=lambda item: -self.seconds[item[0]]):
            lines.append(f"  {count / per:>7.1f} {self.seconds[kind] / per * 1e3:>7.2f}  {kind}")
        return "\n".join(lines)


def instrument() -> Timers:
    from sqlalchemy.orm import Session
    from sqlalchemy.orm.session import SessionTransaction

    import nurture.lifecycle.ingest as ingest
    import nurture.lifecycle.stages as stages
    from nurture.engine.enrollment import Enroller
    from nurture.lifecycle.scoring import Scoring
    from nurture.store import contacts, enrollments, events

    timers = Timers()
    timers.wrap(ingest.Ingestor, "ingest_batch", "ingest")
    timers.wrap(ingest.Ingestor, "_resolve", "resolve")
    timers.wrap(events, "record_events", "record")
    timers.wrap(stages, "record_events", "record")
    timers.wrap(ingest, "wake_contacts", "wake")
    timers.wrap(Scoring, "apply", "apply")
    timers.wrap(Scoring, "_usage", "usage")
    timers.wrap(Scoring, "_score_event", "score")
    timers.wrap(stages.Stages, "apply", "moves")
    timers.wrap(stages.Stages, "emit", "sysevent", inclusive=True)
    timers.wrap(enrollments, "end_nurture", "exits")
    timers.wrap(stages, "open_handoffs", "handoff", inclusive=True)
    timers.wrap(contacts, "save_contacts", "save")
    timers.wrap(ingest, "save_contacts", "save")
    timers.wrap(Enroller, "enroll", "enroll")
    timers.wrap(Session, "flush", "flush", always=True)
    timers.wrap(SessionTransaction, "commit", "commit")
    return timers


# --- phase 1: bulk ingest in this process ------------------------------------------


def build_engine(url: str, project_dir: Path) -> Any:
    from nurture.definitions.loader import load_project
    from nurture.engine.runtime import settle_heap
    from nurture.engine.service import Engine
    from nurture.store.db import create_engine_for, session_factory

    engine = Engine(load_project(project_dir), session_factory(create_engine_for(url)))
    settle_heap()  # as `nurture events import` and `nurture serve` do once started
    return engine


def ingest_all(
    engine: Any, events: Sequence[dict[str, Any]], batch_size: int, timers: Timers | None
) -> dict[str, Any]:
    """Parse and ingest `events`, one transaction per batch, as `nurture events import` would."""
    import nurture.clock as clock
    from nurture.lifecycle.incoming import InvalidEvent, parse_event

    ingestor = engine.lifecycle.ingestor
    statuses: dict[str, int] = defaultdict(int)
    parse_seconds = 0.0
    latencies = []
    started = time.perf_counter()
    for offset in range(0, len(events), batch_size):
        batch_started = time.perf_counter()
        now = clock.now()
        parsed = []
        for data in events[offset : offset + batch_size]:
            try:
                parsed.append(parse_event(data, now=now))
            except InvalidEvent:
                statuses["invalid"] += 1
        parse_seconds += time.perf_counter() - batch_started
        with engine.sessions.begin() as session:
            for outcome in ingestor.ingest_batch(session, parsed, "import"):
                statuses[outcome.status] += 1
        latencies.append(time.perf_counter() - batch_started)
    seconds = time.perf_counter() - started
    if timers is not None:
        timers.totals["parse"] += parse_seconds
        timers.calls["parse"] += len(events)
    return {
        "events": len(events),
        "seconds": seconds,
        "statuses": dict(statuses),
        "batch_p50": statistics.median(latencies),
        "batch_max": max(latencies),
    }


def profile_slice(
    engine: Any, events: Sequence[dict[str, Any]], batch_size: int, top: int = 22
) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    result = ingest_all(engine, events, batch_size, None)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"nurture/", top)
    rate = result["events"] / result["seconds"]
    header = f"cProfile of {result['events']:,} more events ({rate:,.0f} events/s under cProfile)"
    return header + "\n" + _trim_stats(out.getvalue())


def _trim_stats(text: str) -> str:
    root = str(Path(__file__).resolve().parent.parent) + "/"
    prefixes = [root, *(p + "/" for p in sys.path if p.endswith("site-packages"))]
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        for prefix in prefixes:
            line = line.replace(prefix, "")
        lines.append(line)
    return "\n".join(lines)


# --- services: nurture serve / worker / scheduler -----------------------------------


def environment(url: str, project_dir: Path, redis_url: str) -> dict[str, str]:
    """As tests/integration/_services.py builds it: no inherited NURTURE_*, then ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(
        PYTHONUNBUFFERED="1",
        NURTURE_DATABASE_URL=url,
        NURTURE_REDIS_URL=redis_url,
        NURTURE_SECRET_KEY=SECRET,
        NURTURE_PROJECT_DIR=str(project_dir),
        NURTURE_LEASE_SECONDS="30",
        NURTURE_API_KEYS=API_KEY,
        NURTURE_OUTBOX_DIR=str(project_dir.parent / "outbox"),
    )
    return env


class Service:
    """A `nurture …` subprocess in its own process group, its output in a log file."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.args = list(args)
        self.log = log
        self._handle = log.open("ab")
        self.popen = subprocess.Popen(
            [str(NURTURE), *args],
            cwd=log.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        if self.popen.poll() is not None:
            self._handle.flush()
            output = self.log.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"nurture {self.args[0]} exited:\n{output[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the leader, then SIGKILL whatever is left of its group."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._handle.close()


@contextmanager
def server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, Service]]:
    """`nurture serve` on a free port, once it answers /healthz."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    service = Service(["serve", "--port", str(port)], env, workdir / f"serve-{port}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            service.check()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("nurture serve did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield base, service
    finally:
        service.stop()


# --- phase 2: the HTTP path ---------------------------------------------------------


def post_all(base: str, events: Sequence[dict[str, Any]], size: int) -> dict[str, Any]:
    import httpx

    statuses: dict[str, int] = defaultdict(int)
    latencies = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.post("/v1/events", json=events[:1])  # connection, first-request costs
        started = time.perf_counter()
        for offset in range(1, len(events), size):
            sent = time.perf_counter()
            response = client.post("/v1/events", json=events[offset : offset + size])
            latencies.append(time.perf_counter() - sent)
            if response.status_code not in (200, 207):
                raise RuntimeError(f"POST /v1/events: {response.status_code} {response.text[:500]}")
            for item in response.json()["items"]:
                statuses[item["status"]] += 1
        seconds = time.perf_counter() - started
    return {
        "events": len(events) - 1,
        "seconds": seconds,
        "statuses": dict(statuses),
        "batch_p50": statistics.median(latencies),
        "batch_max": max(latencies),
    }


# --- phase 3: latency with a running worker ------------------------------------------


def park_backlog(url: str) -> tuple[int, int]:
    """What the bulk phases left due (enrollments, notifications): 30 days ahead."""
    with psycopg.connect(url) as connection:
        enrollments = connection.execute(
            "UPDATE enrollments SET next_run_at = now() + interval '30 days', lease_until = NULL"
            " WHERE next_run_at <= now() + interval '1 hour'"
        ).rowcount
        notifications = connection.execute(
            "UPDATE notifications SET next_attempt_at = now() + interval '30 days'"
            " WHERE status = 'pending'"
        ).rowcount
    return enrollments, notifications


@dataclass
class Probe:
    kind: str  # exit / wake
    email: str
    enrollment: int
    visit: int
    wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    sent: float = 0.0
    answered: float | None = None
    advanced: float | None = None


def seed_probes(url: str, versions: dict[str, int], count: int, tag: str) -> list[Probe]:
    now = datetime.now(UTC)
    exits = [Seeded(f"probe-exit-{tag}-{i}@bench.example", "mql", 80.0) for i in range(count)]
    wakes = [Seeded(f"probe-wake-{tag}-{i}@bench.example", "lead", 30.0) for i in range(count)]
    seed(url, versions, exits + wakes, scored_at=now, waiting_since=now - timedelta(minutes=1))
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT c.email, e.id, e.visit FROM contacts c"
            " JOIN enrollments e ON e.contact_id = c.id WHERE c.email LIKE %s",
            (f"probe-%-{tag}-%",),
        ).fetchall()
    by_email = {email: (enrollment, visit) for email, enrollment, visit in rows}
    probes = [Probe("exit", p.email, *by_email[p.email]) for p in exits]
    probes += [Probe("wake", p.email, *by_email[p.email]) for p in wakes]
    random.Random(tag).shuffle(probes)
    return probes


def run_probes(
    base: str,
    url: str,
    probes: list[Probe],
    rate: float,
    services: Sequence[Service],
    sink: Sink,
) -> None:
    """Fire probes at Poisson moments; a poller notes when the worker advanced each wake."""
    import httpx

    pending: dict[int, Probe] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            while not stop.is_set():
                with lock:
                    watched = {p.enrollment: p for p in pending.values()}
                if watched:
                    rows = connection.execute(
                        "SELECT id, visit FROM enrollments WHERE id = ANY(%s)", (list(watched),)
                    ).fetchall()
                    seen = time.perf_counter()
                    with lock:
                        for enrollment, visit in rows:
                            if visit != watched[enrollment].visit:
                                watched[enrollment].advanced = seen
                                pending.pop(enrollment, None)
                time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            client.get("/healthz")
            next_at = time.perf_counter()
            for n, probe in enumerate(probes):
                next_at += rng.expovariate(rate)
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                exit_probe = probe.kind == "exit"
                event = {
                    "id": f"probe-{probe.kind}-{n}-{uuid.uuid4().hex[:8]}",
                    "type": "demo.requested" if exit_probe else "email.clicked",
                    "contact": {"email": probe.email},
                    "properties": {} if exit_probe else {"step": "guide", "url": "https://x.fr"},
                }
                if not exit_probe:
                    with lock:
                        pending[probe.enrollment] = probe
                probe.wall = datetime.now(UTC)
                probe.sent = time.perf_counter()
                response = client.post("/v1/events", json=event)
                probe.answered = time.perf_counter()
                status = response.json()["items"][0]["status"] if response.is_success else None
                if status != "recorded":
                    raise RuntimeError(f"probe refused: {response.status_code} {response.text}")
        deadline = time.perf_counter() + 30
        exits = [p.email for p in probes if p.kind == "exit"]
        while time.perf_counter() < deadline:
            with lock:
                done = not pending
            if done and all(e in sink.received for e in exits):
                break
            for service in services:
                service.check()
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(timeout=5)


def probe_outcomes(url: str, probes: list[Probe], sink: Sink) -> dict[str, Any]:
    exits = [p for p in probes if p.kind == "exit"]
    wakes = [p for p in probes if p.kind == "wake"]
    with psycopg.connect(url) as connection:
        ended = dict(
            connection.execute(
                "SELECT id, status || '/' || coalesce(exit_reason, '') FROM enrollments"
                " WHERE id = ANY(%s)",
                ([p.enrollment for p in exits],),
            ).fetchall()
        )
        opened = {
            email
            for (email,) in connection.execute(
                "SELECT c.email FROM handoffs h JOIN contacts c ON c.id = h.contact_id"
                " WHERE c.email = ANY(%s)",
                ([p.email for p in exits],),
            ).fetchall()
        }
        mailed = dict(
            connection.execute(
                "SELECT c.email, n.sent_at FROM notifications n JOIN contacts c ON c.id ="
                " n.contact_id WHERE n.kind = 'email' AND n.topic = 'handoff.created'"
                " AND n.sent_at IS NOT NULL AND c.email = ANY(%s)",
                ([p.email for p in exits],),
            ).fetchall()
        )
        sends = {
            enrollment: (claimed, sent)
            for enrollment, claimed, sent in connection.execute(
                "SELECT enrollment_id, claimed_at, sent_at FROM sends"
                " WHERE enrollment_id = ANY(%s) AND step = 'case-study'",
                ([p.enrollment for p in wakes],),
            ).fetchall()
        }

    def since(moment: datetime | None, probe: Probe) -> float | None:
        return None if moment is None else (moment - probe.wall).total_seconds()

    def values(found: Sequence[float | None]) -> list[float]:
        return [v for v in found if v is not None]

    return {
        "exit": values([p.answered - p.sent if p.answered else None for p in exits]),
        "webhook": values(
            [sink.received[p.email] - p.sent if p.email in sink.received else None for p in exits]
        ),
        "owner email": values([since(mailed.get(p.email), p) for p in exits]),
        "wake post": values([p.answered - p.sent if p.answered else None for p in wakes]),
        "claimed": values([since(sends.get(p.enrollment, (None,))[0], p) for p in wakes]),
        "advanced": values([p.advanced - p.sent if p.advanced else None for p in wakes]),
        "sent": values([since(sends.get(p.enrollment, (None, None))[1], p) for p in wakes]),
        "not exited": sum(ended.get(p.enrollment) != "exited/prospect" for p in exits),
        "no handoff": sum(p.email not in opened for p in exits),
        "exits": len(exits),
        "wakes": len(wakes),
    }


LOADS = ("busy", "quiet")


def latency_run(
    url: str,
    project_dir: Path,
    versions: dict[str, int],
    args: argparse.Namespace,
    worker_env: dict[str, str],
    sink: Sink,
) -> dict[str, dict[str, Any]]:
    """Start serve + worker + scheduler, warm them up, then the busy and the quiet probes."""
    import redis

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    tag = uuid.uuid4().hex[:6]
    workdir = project_dir.parent
    env = environment(url, project_dir, args.redis_url)
    plan = {"busy": (args.probes, args.probe_rate), "quiet": (args.quiet_probes, args.quiet_rate)}
    probes = {load: seed_probes(url, versions, n, f"{tag}{load}") for load, (n, _) in plan.items()}
    warm = seed_probes(url, versions, 3, f"{tag}warm")
    services: list[Service] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        with server(env, workdir) as (base, web):
            worker = Service(
                ["worker", "--processes", "1", "--threads", str(args.worker_threads)],
                {**env, **worker_env},
                workdir / f"worker-{tag}.log",
            )
            services.append(worker)
            scheduler = Service(
                ["scheduler", "--interval", str(args.scheduler_interval)],
                env,
                workdir / f"scheduler-{tag}.log",
            )
            services.append(scheduler)
            alive = [worker, scheduler, web]
            time.sleep(args.warmup)  # imports, broker connection
            for service in alive:
                service.check()
            run_probes(base, url, warm, 5.0, alive, sink)  # each process builds its engine
            for load, (_, rate) in plan.items():
                time.sleep(3)  # let the worker's consumer go idle, as between real events
                started = time.perf_counter()
                run_probes(base, url, probes[load], rate, alive, sink)
                result = probe_outcomes(url, probes[load], sink)
                result.update(seconds=time.perf_counter() - started, rate=rate)
                results[load] = result
    finally:
        for service in reversed(services):
            service.stop()
        client.flushdb()
        client.close()
    return results


# --- the report ---------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def ms(values: Sequence[float], expected: int) -> str:
    missing = f"  ({expected - len(values)} missing)" if len(values) < expected else ""
    if not values:
        return f"{'—':>7} {'—':>7} {'—':>7} {'—':>7}{missing}"
    cells = [pct(values, 50), pct(values, 90), pct(values, 99), max(values)]
    return " ".join(f"{v * 1e3:>7.0f}" for v in cells) + missing


def print_breakdown(result: dict[str, Any], timers: Timers) -> None:
    n, wall = result["events"], result["seconds"]
    print("\nPer-stage breakdown of the bulk run (exclusive time), µs per event (share of wall):")
    accounted = 0.0
    for stage, meaning in STAGES:
        value = timers.totals.get(stage, 0.0)
        accounted += value
        print(f"  {stage:<8} {value / n * 1e6:>7.1f} ({value / wall:>5.1%})  {meaning}")
    rest = wall - accounted
    print(f"  {'other':<8} {rest / n * 1e6:>7.1f} ({rest / wall:>5.1%})  the benchmark loop, GC")
    if timers.missing:
        print(f"  (not found, so not timed: {', '.join(timers.missing)})")


def print_phase(label: str, result: dict[str, Any], delta: dict[str, int], batch: int) -> None:
    statuses = result["statuses"]
    recorded = max(statuses.get("recorded", 0), 1)
    rate = result["events"] / result["seconds"]
    print(
        f"{label}: {result['events']:,} events in {result['seconds']:.2f} s = {rate:,.0f} events/s"
        f" (batches of {batch}: p50 {result['batch_p50'] * 1e3:.0f} ms,"
        f" max {result['batch_max'] * 1e3:.0f} ms)"
    )
    print(
        f"  outcomes {dict(sorted(statuses.items()))}; score ledger +{delta['ledger']:,} rows;"
        f" contacts created +{delta['contacts']:,}"
    )
    print(
        f"  stage moves {delta['moves']:,} ({delta['moves'] / recorded:.1%} of recorded events,"
        f" {delta['moved contacts']:,} contacts): →lead {delta['to lead']:,},"
        f" →mql {delta['to mql']:,}, →sql {delta['to sql']:,}; enrollments +{delta['enrollments']:,}"
    )
    print(
        f"  prospects: {delta['to sql']:,} ({delta['to sql'] / recorded:.2%} of events),"
        f" {delta['exited prospect']:,} enrollments exited, {delta['handoffs']:,} handoffs opened,"
        f" {delta['notifications']:,} notifications queued;"
        f" system events (stage.changed, handoff.created) +{delta['system events']:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000, help="bulk, in this process")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per transaction")
    parser.add_argument("--http-events", type=int, default=20_000, help="via POST /v1/events")
    parser.add_argument("--http-batch", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile a slice even if fast")
    parser.add_argument("--profile-events", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=150, help="busy: probes of each kind")
    parser.add_argument("--probe-rate", type=float, default=10.0, help="busy: probes/s")
    parser.add_argument("--quiet-probes", type=int, default=15, help="quiet: probes of each kind")
    parser.add_argument("--quiet-rate", type=float, default=1.0, help="quiet: probes/s")
    parser.add_argument("--worker-threads", type=int, default=4)
    parser.add_argument("--scheduler-interval", type=float, default=0.2)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds for services to start")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--redis-url", default=REDIS_URL, help="flushed before and after")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-fast-poll", action="store_true", help="only the default worker")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    sink = Sink()
    problems: list[str] = []
    latency: dict[str, dict[str, dict[str, Any]]] = {}
    http: dict[str, Any] | None = None
    profile_text = ""
    try:
        project_dir = tmp / "project"
        write_project(project_dir, sink.url)
        with temporary_database(args.admin_url) as url:
            now = datetime.now(UTC)
            versions = version_ids(url, project_dir)
            people = population(args.contacts, rng)
            started = time.perf_counter()
            seed(
                url,
                versions,
                people,
                scored_at=now - timedelta(days=8),
                waiting_since=now - timedelta(days=1),
            )
            settle(url)
            print(
                f"seeded {len(people):,} contacts, each waiting in its stage's workflow,"
                f" in {time.perf_counter() - started:.1f} s"
            )
            # One density for every phase: the events of the last 7 days, in time order.
            source = EventSource(people, rng)
            sizes = (args.events, args.http_events + 1, args.profile_events)
            start, span = now - timedelta(days=7), timedelta(days=7, minutes=-10) / sum(sizes)
            slices = []
            for size in sizes:
                slices.append(source.make(size, start, start + span * size))
                start += span * size
            bulk_events, http_events, profile_events = slices

            engine = build_engine(url, project_dir)
            warm_up = source.make(200, now - timedelta(days=8), now - timedelta(days=7, hours=23))
            ingest_all(engine, warm_up, 200, None)
            before = counts(url)
            timers = instrument()
            statements = Statements(engine.sessions.kw["bind"])
            try:
                bulk = ingest_all(engine, bulk_events, args.batch_size, timers)
            finally:
                timers.unwrap()
                statements.close()
            bulk_delta = diff(counts(url), before)
            print_phase("bulk ingest (Ingestor.ingest_batch)", bulk, bulk_delta, args.batch_size)
            print_breakdown(bulk, timers)
            print(statements.report(-(-len(bulk_events) // args.batch_size)))
            if args.profile or bulk["events"] / bulk["seconds"] < TARGET_RATE:
                profile_text = profile_slice(engine, profile_events, args.batch_size)
            engine.sessions.kw["bind"].dispose()

            if not args.skip_http:
                before = counts(url)
                env = environment(url, project_dir, args.redis_url)
                with server(env, tmp) as (base, _):
                    http = post_all(base, http_events, args.http_batch)
                print()
                print_phase("HTTP (POST /v1/events)", http, diff(counts(url), before), 1000)

            if not args.skip_latency:
                enrollments, notifications = park_backlog(url)
                settle(url)
                print(
                    f"\nparked {enrollments:,} enrollments and {notifications:,} notifications"
                    " due after the bulk phases (30 days ahead)"
                )
                variants: list[tuple[str, dict[str, str]]] = [("default worker", {})]
                if not args.skip_fast_poll:
                    variants.append(("idle poll ≤ 100 ms", {"dramatiq_worker_timeout": "100"}))
                for label, worker_env in variants:
                    latency[label] = latency_run(url, project_dir, versions, args, worker_env, sink)
                    for load, result in latency[label].items():
                        print(
                            f"latency, {label}, {load}: {result['exits'] + result['wakes']} probes"
                            f" in {result['seconds']:.1f} s"
                        )
                        for key, what in (
                            ("not exited", "exit probes not exited"),
                            ("no handoff", "exit probes without a handoff"),
                        ):
                            if result[key]:
                                problems.append(f"{label}, {load}: {result[key]} {what}")
                        late = {
                            "webhook": result["exits"] - len(result["webhook"]),
                            "advanced": result["wakes"] - len(result["advanced"]),
                        }
                        for key, count in late.items():
                            if count:
                                problems.append(f"{label}, {load}: {count} probes never {key}")

        report(args, bulk, http, latency)
        if profile_text:
            print("\n" + profile_text)
    finally:
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print(f"PROBLEM: {problem}")


MEASURES = (
    ("exit", "exits", "exit: POST demo.requested → 200 (exited, handoff open)"),
    ("webhook", "exits", "exit: POST → handoff webhook at the CRM sink"),
    ("owner email", "exits", "exit: POST → owner's handoff email sent"),
    ("wake post", "wakes", "wake: POST email.clicked → 200 (enrollment due)"),
    ("claimed", "wakes", "wake: POST → worker began the advance"),
    ("advanced", "wakes", "wake: POST → new state committed (polled)"),
    ("sent", "wakes", "wake: POST → next email sent (outbox)"),
)


def report(
    args: argparse.Namespace,
    bulk: dict[str, Any],
    http: dict[str, Any] | None,
    latency: dict[str, dict[str, dict[str, Any]]],
) -> None:
    rate = bulk["events"] / bulk["seconds"]
    print()
    print(f"Event ingest, PostgreSQL, {args.contacts:,} contacts, batches of {args.batch_size:,}:")
    header = f"{'path':<40} {'events':>8} {'wall s':>7} {'events/s':>9} {'µs/event':>9}"
    print(header)
    print("-" * len(header))
    rows = [("Ingestor.ingest_batch (+ parse_event)", bulk)]
    if http:
        rows.append(("POST /v1/events → nurture serve", http))
    for label, row in rows:
        r = row["events"] / row["seconds"]
        print(f"{label:<40} {row['events']:>8,} {row['seconds']:>7.2f} {r:>9,.0f} {1e6 / r:>9.1f}")
    verdict = "met" if rate >= TARGET_RATE else "NOT met"
    print(f"bulk ingest: {rate:,.0f} events/s per process (target ≥ {TARGET_RATE:,}: {verdict})")
    if not latency:
        return
    print(
        f"\nLatency, ms: nurture serve + nurture worker (1 process × {args.worker_threads} threads)"
        f" + nurture scheduler --interval {args.scheduler_interval:g}; Poisson probes, busy"
        f" {args.probe_rate:g}/s ({args.probes} of each kind), quiet {args.quiet_rate:g}/s"
        f" ({args.quiet_probes} of each)"
    )
    head = f"{'':<16} {'measure':<54} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
    print(head)
    print("-" * len(head))
    for label, loads in latency.items():
        for load, result in loads.items():
            for key, count, what in MEASURES:
                name = f"{label[:9]}, {load}"
                print(f"{name:<16} {what:<54} {ms(result[key], result[count])}")
    for label, loads in latency.items():
        for load, result in loads.items():
            exit99 = pct(result["exit"], 99)
            hook99 = pct(result["webhook"], 99)
            wake99 = pct(result["advanced"], 99)
            worst = max(exit99, hook99, wake99)
            print(
                f"{label}, {load}: p99 event → exit {exit99 * 1e3:.0f} ms, → handoff webhook"
                f" {hook99 * 1e3:.0f} ms; event → worker advanced {wake99 * 1e3:.0f} ms"
                f" (target p99 < 1 s: {'met' if worst < TARGET_P99 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
