"""Segment upkeep: the same events among 10k and among 1M contacts, ingested and re-checked.

Usage: ``python benchmarks/segment_upkeep.py [--small 10000] [--big 1000000]
[--active 2000] [--events 20000] [--pricing 0.33] [--batch-size 1000]
[--warmup 2000] [--rounds 3] [--skip-bare]``

Builds a project in a temporary folder with one segment, the example's
``pricing-hunters`` (``when: "contact.stage == 'lead'"``, three
``page.visited`` on a pricing page within 7 days), and one workflow that
enrolls its members (``enroll: {segment: pricing-hunters}``, a 30-day wait:
an entry starts an enrollment, as in production). For each size, a throwaway
PostgreSQL database (dropped at the end, even on failure) is migrated with
`nurture.store.db.upgrade` and loaded with that many `lead` contacts (COPY),
then VACUUM ANALYZE and CHECKPOINT.

The SAME event stream runs at both sizes: `--events` ``page.visited`` over
`--active` contacts (the same emails at both sizes) scattered through the
table (one in every size / active rows of the COPY, at a random place in its
stretch: among 1M their rows sit on pages of their own, as they would in
production), a share `--pricing` of them on ``/pricing``, their times spread
over the 6 days before a virtual clock's start, in time order. First,
untimed, `--warmup` events of 30 days ago for 200 other contacts (outside
any window: judged, no standing) warm the process. The stream then goes
through `Ingestor.ingest` (the entry every door uses: its own transaction
per `--batch-size` events), with the segment upkeep listening as in
production: each batch judges its contacts again, writes the standings that
changed, announces entries (`segment.entered`, which enrolls them).

Then the virtual clock moves 8 days on: every counted event has left its
window, and the standings of the members are due a re-check (their
`recheck_at`). A scheduler tick runs `Engine.recheck_segments` (what
`Scheduler.tick` runs first: up to `RECHECK_BATCH` due standings judged
again, in their own transaction, each exit announced and the contact's
enrollments woken); the script runs ticks until one re-checks nothing and
times each.

Both sizes run `--rounds` times, alternately (small, big, small, big…: what
else runs on the machine weighs on both alike), each time in a fresh
database. Unless `--skip-bare`, the small size runs once more with a project
without the segment (nor its workflow): the same ingest, no upkeep, for
reference.

Printed per size, medians over the rounds: the load time, the ingest rate
(events/s, with the upkeep), the members after ingest, the first (full)
re-check tick and all of them; then the ratio big / small of the ingest time
and of the ticks, with each round's: the target is ≤ 1.5 (the upkeep costs
what the events touch, not how many contacts there are). Numbers are for one
machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _db import temporary_database  # benchmarks/ is on sys.path when run

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.lifecycle.incoming import IncomingEvent, parse_event
from nurture.lifecycle.segments import RECHECK_BATCH
from nurture.store.db import create_engine_for, session_factory

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 1.5
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the virtual clock's start
SPREAD = timedelta(days=6)  # the events come in over this span before START
LATER = timedelta(days=8)  # past the 7-day window of every counted event

CONFIG = """\
stages: [subscriber, lead, mql, sql, opportunity, customer]
prospect_stage: sql
segments:
  pricing-hunters:
    when: "contact.stage == 'lead'"
    events: {type: page.visited, match: "'/pricing' in (event.url or '')", count: ">= 3", within: 7d}
"""

WORKFLOW = """\
name: pricing-follow-up
enroll: {segment: pricing-hunters}
steps:
  - wait: 30d
"""

PAGES = ("/", "/blog/scoring", "/features", "/customers", "/about", "/docs")


@dataclass
class Result:
    contacts: int
    segments: bool = True
    load_seconds: float = 0.0
    ingest_seconds: float = 0.0
    recorded: int = 0
    members: int = 0
    due: int = 0
    ticks: list[float] = field(default_factory=list)
    rechecked: list[int] = field(default_factory=list)
    after: int = 0

    @property
    def rate(self) -> float:
        return self.recorded / self.ingest_seconds


def email(n: int) -> str:
    return f"contact{n}@example{n % 97}.com"


def active_email(k: int) -> str:
    return f"active{k}@example{k % 97}.com"


def active_rows(contacts: int, active: int) -> dict[int, int]:
    """Row position → active contact: one at a random place in each stretch of the table."""
    rng = random.Random(5)
    stride = contacts // active
    return {k * stride + rng.randrange(stride): k for k in range(active)}


def write_project(root: Path, segments: bool) -> None:
    """The project; without `segments`, the same stages and no segment nor workflow."""
    (root / "workflows").mkdir(parents=True)
    config = CONFIG if segments else CONFIG.split("segments:")[0]
    (root / "nurture.yaml").write_text(config, encoding="utf-8")
    if segments:
        (root / "workflows" / "pricing-follow-up.yaml").write_text(WORKFLOW, encoding="utf-8")


def stream(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The events, in time order; the same for every size (a fixed seed, the active
    contacts exist in every database)."""
    rng = random.Random(11)
    moments = sorted(rng.uniform(0, SPREAD.total_seconds()) for _ in range(args.events))
    events = []
    for serial, offset in enumerate(moments):
        page = "/pricing" if rng.random() < args.pricing else rng.choice(PAGES)
        at = START - SPREAD + timedelta(seconds=offset)
        events.append(
            {
                "id": f"evt-{serial:08d}",
                "type": "page.visited",
                "at": at.isoformat().replace("+00:00", "Z"),
                "contact": {"email": active_email(rng.randrange(args.active))},
                "properties": {"url": f"https://www.example.com{page}"},
            }
        )
    return events


def warmup_stream(count: int) -> list[dict[str, Any]]:
    """Events for contacts outside the active ones, older than any window: they go through
    the whole path (the upkeep judges them: no standing) and warm this process's caches,
    so the first size measured pays no more than the second."""
    rng = random.Random(3)
    at = (START - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    return [
        {
            "id": f"warm-{serial:06d}",
            "type": "page.visited",
            "at": at,
            "contact": {"email": email(rng.randrange(200))},
            "properties": {"url": "https://www.example.com/pricing"},
        }
        for serial in range(count)
    ]


def load(url: str, contacts: int, active: int) -> None:
    """`contacts` leads (COPY), `active` of them the events' (scattered), analysed and
    checkpointed."""
    scattered = active_rows(contacts, active)
    with (
        psycopg.connect(url) as connection,
        connection.cursor().copy(
            "COPY contacts (email, first_name, company, stage, score, consent_status,"
            " properties, tags, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        created = START - timedelta(days=30)
        for n in range(contacts):
            copy.write_row(
                (
                    active_email(scattered[n]) if n in scattered else email(n),
                    f"Prénom{n}",
                    f"Société {n % 5000}",
                    "lead",
                    30.0,
                    "granted",
                    "{}",
                    "[]",
                    created,
                    created,
                )
            )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


def count(url: str, query: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(query).fetchone()
    return int(row[0]) if row else 0


def ingest(engine: Engine, events: Sequence[IncomingEvent], batch_size: int) -> tuple[float, int]:
    """`Ingestor.ingest`, batch after batch, as `nurture events import` and the API call it."""
    ingestor = engine.lifecycle.ingestor
    recorded = 0
    started = time.perf_counter()
    for offset in range(0, len(events), batch_size):
        outcomes = ingestor.ingest(engine.sessions, events[offset : offset + batch_size], "import")
        recorded += sum(1 for outcome in outcomes if outcome.recorded)
    return time.perf_counter() - started, recorded


def measure(
    args: argparse.Namespace, contacts: int, data: Sequence[dict[str, Any]], segments: bool = True
) -> Result:
    result = Result(contacts, segments)
    with tempfile.TemporaryDirectory() as folder, temporary_database(args.admin_url) as url:
        root = Path(folder)
        write_project(root, segments)
        started = time.perf_counter()
        load(url, contacts, args.active)
        result.load_seconds = time.perf_counter() - started
        loaded = count(url, "SELECT count(*) FROM contacts")
        if loaded != contacts:
            print(f"PROBLEM: {loaded:,} contacts loaded, {contacts:,} wanted")
        events = [parse_event(item, now=START) for item in data]
        warm = [parse_event(item, now=START) for item in warmup_stream(args.warmup)]
        database = create_engine_for(url)
        engine = Engine(load_project(root), session_factory(database))
        virtual = clock.VirtualClock(START)
        try:
            with clock.using(virtual):
                ingest(engine, warm, args.batch_size)
                result.ingest_seconds, result.recorded = ingest(engine, events, args.batch_size)
                result.members = count(url, "SELECT count(*) FROM segment_members WHERE member")
                later = START + LATER
                virtual.advance_to(later)
                result.due = count(
                    url,
                    "SELECT count(*) FROM segment_members"
                    f" WHERE recheck_at <= '{later.isoformat()}'",
                )
                while True:
                    begun = time.perf_counter()
                    done = engine.recheck_segments(later)
                    result.ticks.append(time.perf_counter() - begun)
                    result.rechecked.append(done)
                    if done == 0:
                        break
                result.after = count(url, "SELECT count(*) FROM segment_members WHERE member")
        finally:
            database.dispose()
    print(
        f"{contacts:>11,} contacts{'' if segments else ' (no segments)'}: loaded in {result.load_seconds:.1f} s, "
        f"{result.recorded:,} events in {result.ingest_seconds:.1f} s "
        f"({result.rate:,.0f}/s), {result.members:,} members, {result.due:,} re-checks due, "
        f"ticks {', '.join(f'{t * 1e3:.0f}' for t in result.ticks)} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="contacts, small run")
    parser.add_argument("--big", type=int, default=1_000_000, help="contacts, big run")
    parser.add_argument("--active", type=int, default=2_000, help="contacts the events are for")
    parser.add_argument("--events", type=int, default=20_000, help="page.visited events")
    parser.add_argument("--pricing", type=float, default=1 / 3, help="share on /pricing")
    parser.add_argument("--batch-size", type=int, default=1_000, help="events per ingest")
    parser.add_argument(
        "--warmup", type=int, default=2_000, help="untimed events first (outside any window)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="small then big, this many times (medians)"
    )
    parser.add_argument(
        "--skip-bare", action="store_true", help="skip the run without segments (reference)"
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL admin URL")
    args = parser.parse_args()
    if not 0 < args.active <= args.small <= args.big:
        parser.error("need 0 < --active <= --small <= --big")

    data = stream(args)
    rounds: list[tuple[Result, Result]] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number} of {args.rounds}")
        small, big = (measure(args, size, data) for size in (args.small, args.big))
        rounds.append((small, big))
    bare = None if args.skip_bare else measure(args, args.small, data, segments=False)

    print()
    print(
        f"Segment upkeep: {args.events:,} page.visited over {args.active:,} contacts "
        f"({args.pricing:.0%} on /pricing), Ingestor.ingest in batches of {args.batch_size:,}; "
        f"then the clock 8 days on, scheduler ticks of Engine.recheck_segments "
        f"(≤ {RECHECK_BATCH} each); median of {args.rounds} rounds, PostgreSQL"
    )
    header = (
        f"{'contacts':>11} {'load s':>7} {'ingest s':>9} {'events/s':>9} {'members':>8} "
        f"{'due':>6} {'1st tick ms':>12} {'all ticks ms':>13}"
    )
    print(header)
    print("-" * len(header))
    figures = {}
    for side in (0, 1):
        runs = [pair[side] for pair in rounds]
        ingest_s = statistics.median(r.ingest_seconds for r in runs)
        first = statistics.median(r.ticks[0] for r in runs)
        every = statistics.median(sum(r.ticks) for r in runs)
        figures[side] = (ingest_s, first, every)
        r = runs[0]
        print(
            f"{r.contacts:>11,} {statistics.median(x.load_seconds for x in runs):>7.1f} "
            f"{ingest_s:>9.2f} {r.recorded / ingest_s:>9,.0f} {r.members:>8,} {r.due:>6,} "
            f"{first * 1e3:>12.1f} {every * 1e3:>13.1f}"
        )
    if bare is not None:
        upkeep = 1 - bare.ingest_seconds / figures[0][0]
        print(
            f"{bare.contacts:>11,} {bare.load_seconds:>7.1f} {bare.ingest_seconds:>9.2f} "
            f"{bare.rate:>9,.0f}  without segments: the upkeep is {upkeep:.0%} of the ingest"
        )
    runs = [r for pair in rounds for r in pair]
    if any(r.members != runs[0].members or r.rechecked != runs[0].rechecked for r in runs):
        print("PROBLEM: the runs did not all do the same work (members or re-checks differ)")
    if any(r.after for r in runs):
        print("PROBLEM: members left after the re-checks (expected none)")
    print()
    small, big = rounds[0]
    for column, label in enumerate(("ingest time", "first re-check tick", "all re-check ticks")):
        ratio = figures[1][column] / figures[0][column]
        each = [_figure(b, column) / _figure(a, column) for a, b in rounds]
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(
            f"ratio {big.contacts:,} / {small.contacts:,} contacts, {label}: {ratio:.2f} "
            f"(target ≤ {TARGET}: {verdict}; rounds {', '.join(f'{x:.2f}' for x in each)})"
        )


def _figure(result: Result, column: int) -> float:
    return (result.ingest_seconds, result.ticks[0], sum(result.ticks))[column]


if __name__ == "__main__":
    main()
