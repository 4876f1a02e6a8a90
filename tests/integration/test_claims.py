"""Claims on PostgreSQL: schedulers racing each other split the due rows, never share one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from nurture.store import db
from nurture.store import enrollments as work
from nurture.store.models import Contact, Enrollment, WorkflowVersion

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_concurrent_claims_are_disjoint_and_complete(postgres_url: str) -> None:
    db.upgrade(postgres_url)
    engine = db.create_engine_for(postgres_url, pool_size=8)
    sessions = db.session_factory(engine)
    with sessions.begin() as session:
        session.execute(
            insert(Contact),
            [{"email": f"c{i}@example.com", "properties": {}, "tags": []} for i in range(600)],
        )
        version = WorkflowVersion(name="w", content_hash="h", source="")
        session.add(version)
        session.flush()
        ids = [
            c for (c,) in session.execute(Contact.__table__.select().with_only_columns(Contact.id))
        ]
        session.execute(
            insert(Enrollment),
            [
                {
                    "contact_id": cid,
                    "workflow": "w",
                    "workflow_version_id": version.id,
                    "next_run_at": NOW - timedelta(seconds=n % 50),
                    "status": "active",
                }
                for n, cid in enumerate(ids)
            ]
            + [
                {
                    "contact_id": cid,
                    "workflow": "w",
                    "workflow_version_id": version.id,
                    "next_run_at": NOW + timedelta(days=1),
                    "status": "waiting",
                }
                for cid in ids[:100]
            ],
        )
    claimed: list[list[int]] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def scheduler() -> None:
        start.wait()
        while True:
            with sessions.begin() as session:
                batch = work.claim_due_enrollments(session, NOW, 25, timedelta(minutes=2))
            if not batch:
                return
            with lock:
                claimed.append(batch)

    threads = [threading.Thread(target=scheduler) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [i for batch in claimed for i in batch]
    assert len(everything) == len(set(everything)) == 600, "a due row was claimed twice or lost"
    with sessions.begin() as session:
        assert work.claim_due_enrollments(session, NOW, 1000, timedelta(minutes=2)) == []
    engine.dispose()
