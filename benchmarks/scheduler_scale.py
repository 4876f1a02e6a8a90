"""Scheduler scale: a tick's cost for the same due rows among 10k and among 1M waiting enrollments.

Usage: ``python benchmarks/scheduler_scale.py [--sizes 10000 1000000] [--due 1000]
[--batch-size 200] [--repeats 7] [--checkpoint]``

For each size, a throwaway PostgreSQL database (dropped at the end, even on
failure) is migrated with `nurture.store.db.upgrade` and loaded with that many
contacts and waiting enrollments (COPY, then ``INSERT … SELECT``), their
`next_run_at` spread over the next 30 days, plus `--due` enrollments due in
the last ten minutes, scattered through the table; then ANALYZE.

A tick is what `Scheduler.tick` does with enrollments: `claim_due_enrollments`
in its own transaction, batch after batch, until a batch comes back short.
Each repeat first releases the leases (and VACUUM ANALYZE), so every tick
claims the same `--due` rows. Printed: the median tick and the median batch
for each size, the ratio between the largest and the smallest size (target
≤ 1.5: a claim costs what is due, not what is waiting), and the EXPLAIN
ANALYZE of one claim, to show the partial index `ix_enrollments_due` at work.
Numbers are for one machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from _db import temporary_database  # benchmarks/ is on sys.path when run
from sqlalchemy import event

from nurture.store import enrollments as work
from nurture.store.db import create_engine_for, session_factory

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LEASE = timedelta(minutes=2)
WORKFLOW_SOURCE = "name: hello\nenroll: {stage: lead}\nsteps:\n  - send: x/hello\n  - wait: 30d\n"


@dataclass
class Result:
    waiting: int
    load_seconds: float = 0.0
    ticks: list[float] = field(default_factory=list)
    batches: list[float] = field(default_factory=list)
    claimed: list[int] = field(default_factory=list)
    table_mb: float = 0.0
    index_mb: float = 0.0
    plan: list[str] = field(default_factory=list)


def load(url: str, waiting: int, due: int, now: datetime, seed: int = 7) -> None:
    """`waiting + due` contacts with one enrollment each; `due` of them due, at random places."""
    total = waiting + due
    rng = random.Random(seed)
    with psycopg.connect(url) as connection:
        version = connection.execute(
            "INSERT INTO workflow_versions (name, content_hash, source, created_at)"
            " VALUES ('hello', %s, %s, %s) RETURNING id",
            ("0" * 64, WORKFLOW_SOURCE, now),
        ).fetchone()
        assert version is not None
        with connection.cursor().copy(
            "COPY contacts (email, first_name, company, stage, score, consent_status,"
            " properties, tags, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(total):
                copy.write_row(
                    (
                        f"contact{n}@example{n % 97}.com",
                        f"Prénom{n}",
                        f"Société {n % 5000}",
                        "lead",
                        0.0,
                        "granted",
                        "{}",
                        "[]",
                        now,
                        now,
                    )
                )
        # Waiting: due some time in the next 30 days (after a first email, a wait step).
        connection.execute(
            "INSERT INTO enrollments (contact_id, workflow, workflow_version_id, step, visit,"
            " status, waiting_for, next_run_at, started_at)"
            " SELECT id, 'hello', %(version)s, 'wait-2', 2, 'waiting', NULL,"
            " %(now)s::timestamptz + interval '1 hour' + random() * interval '30 days',"
            " %(now)s::timestamptz - interval '1 day' FROM contacts",
            {"version": version[0], "now": now},
        )
        due_ids = rng.sample(range(1, total + 1), due)
        connection.execute(
            "UPDATE enrollments SET next_run_at = %s::timestamptz - random() * interval '10 minutes'"
            " WHERE id = ANY(%s)",
            (now, due_ids),
        )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE contacts, enrollments")
        connection.execute("CHECKPOINT")


def release(url: str, checkpoint: bool) -> None:
    """Every due row claimable again: the next tick claims the same rows.

    With `checkpoint`, a CHECKPOINT follows, so the tick pays what a tick on a
    large table pays in production: the first change of each page after a
    checkpoint writes the whole page to the WAL (full-page image), and due rows
    among 1M are one per page where among 10k they share a few.
    """
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "UPDATE enrollments SET lease_until = NULL WHERE lease_until IS NOT NULL"
        )
        connection.execute("VACUUM ANALYZE enrollments")
        if checkpoint:
            connection.execute("CHECKPOINT")


def sizes(url: str) -> tuple[float, float]:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT pg_table_size('enrollments'), pg_relation_size('ix_enrollments_due')"
        ).fetchone()
    assert row is not None
    return row[0] / 2**20, row[1] / 2**20


def tick(sessions: Any, now: datetime, batch_size: int) -> tuple[float, list[float], int]:
    """What `Scheduler.tick` does with enrollments: claim batches until one comes back short."""
    batches = []
    claimed = 0
    started = time.perf_counter()
    while True:
        begun = time.perf_counter()
        with sessions.begin() as session:
            ids = work.claim_due_enrollments(session, now, batch_size, LEASE)
        batches.append(time.perf_counter() - begun)
        claimed += len(ids)
        if len(ids) < batch_size:
            break
    return time.perf_counter() - started, batches, claimed


def explain(engine: Any, sessions: Any, now: datetime, batch_size: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim statement exactly as nurture sends it; rolled back."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE ENROLLMENTS"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with sessions() as session:
            work.claim_due_enrollments(session, now, batch_size, LEASE)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", parameters
        ).fetchall()
        connection.rollback()
    return [row[0] for row in rows]


def measure(args: argparse.Namespace, waiting: int) -> Result:
    result = Result(waiting)
    now = datetime.now(UTC)
    with temporary_database(args.admin_url) as url:
        started = time.perf_counter()
        load(url, waiting, args.due, now)
        result.load_seconds = time.perf_counter() - started
        result.table_mb, result.index_mb = sizes(url)
        engine = create_engine_for(url)
        sessions = session_factory(engine)
        try:
            result.plan = explain(engine, sessions, now, args.batch_size)
            for _ in range(args.repeats):
                release(url, args.checkpoint)
                seconds, batches, claimed = tick(sessions, now, args.batch_size)
                result.ticks.append(seconds)
                result.batches += batches
                result.claimed.append(claimed)
        finally:
            engine.dispose()
    print(
        f"{waiting:>11,} waiting: loaded in {result.load_seconds:.1f} s, "
        f"ticks {', '.join(f'{t * 1e3:.1f}' for t in result.ticks)} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--due", type=int, default=1000, help="due enrollments in every size")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="CHECKPOINT before every tick (full-page WAL images: the worst case)",
    )
    args = parser.parse_args()

    results = [measure(args, waiting) for waiting in sorted(args.sizes)]

    print()
    print(
        f"Scheduler tick: claim {args.due:,} due enrollments in batches of {args.batch_size} "
        f"(median of {args.repeats} ticks), PostgreSQL"
        + (", CHECKPOINT before each tick" if args.checkpoint else "")
    )
    header = (
        f"{'waiting':>11} {'table':>8} {'due idx':>8} {'load s':>7} {'claimed':>8} "
        f"{'tick ms':>8} {'min ms':>7} {'batch ms':>9} {'ms/1k due':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        median = statistics.median(r.ticks)
        print(
            f"{r.waiting:>11,} {r.table_mb:>5.0f} MB {r.index_mb:>5.1f} MB {r.load_seconds:>7.1f} "
            f"{statistics.median(r.claimed):>8,.0f} {median * 1e3:>8.1f} {min(r.ticks) * 1e3:>7.1f} "
            f"{statistics.median(r.batches) * 1e3:>9.2f} {median / args.due * 1e6:>10.1f}"
        )
    if len(results) > 1:
        small, large = results[0], results[-1]
        ratio = statistics.median(large.ticks) / statistics.median(small.ticks)
        best = min(large.ticks) / min(small.ticks)
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(
            f"\nratio {large.waiting:,} / {small.waiting:,} waiting: {ratio:.2f} on the median "
            f"tick (target ≤ 1.5: {verdict}), {best:.2f} on the fastest"
        )
    for r in results:
        print(f"\nEXPLAIN ANALYZE of one claim among {r.waiting:,} waiting:")
        for line in r.plan:
            marker = "  <-- the partial index" if "ix_enrollments_due" in line else ""
            print(f"  {line}{marker}")
        if not any("ix_enrollments_due" in line for line in r.plan):
            print("  PROBLEM: the partial index ix_enrollments_due is not used")


if __name__ == "__main__":
    main()
