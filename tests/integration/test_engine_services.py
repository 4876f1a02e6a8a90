"""The engine as deployed: PostgreSQL, Redis, a real SMTP server, separate processes.

`nurture worker` (two Dramatiq processes of two threads) and `nurture
scheduler` run as subprocesses against a fresh PostgreSQL database, a
dedicated Redis database and an aiosmtpd server, exactly as an operator starts
them; contacts come in through `nurture contacts import`. Waits are seconds,
so the whole journey of every contact runs for real in a few seconds.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.integration._services import (
    Deployment,
    by_recipient,
    check_exactly_once,
    ledger,
    processes,
    received,
    redis_db,
)
from tests.smtp_server import SMTPTestServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONTACTS = 40
WAITS = ("2s", "3s")


def test_every_contact_receives_its_emails_once_in_order(
    tmp_path: Path, postgres_url: str, smtp_server: SMTPTestServer
) -> None:
    with redis_db(11) as redis, processes() as start:
        deployment = Deployment.create(
            tmp_path,
            database_url=postgres_url,
            redis_url=redis.url,
            smtp_url=smtp_server.url,
            contacts=CONTACTS,
            waits=WAITS,
            lease_seconds=3,
        )
        worker = deployment.start(start, "worker", "--processes", "2", "--threads", "2")
        scheduler = deployment.start(start, "scheduler", "--interval", "0.2")
        deployment.wait_until_done(
            lambda: len(smtp_server.messages), alive=[worker, scheduler], timeout=60
        )
        # Both stop cleanly on SIGTERM, as under a service manager.
        assert scheduler.stop() == 0, scheduler.output()[-3000:]
        assert worker.stop() == 0, worker.output()[-3000:]

    messages = received(smtp_server.messages)
    check_exactly_once(deployment, messages)

    # Each message is the contact's own: envelope, To and the rendered subject.
    first = deployment.people["contact0001@example.com"]
    [one, two, three] = by_recipient(messages)["contact0001@example.com"]
    assert one.subject == f"{first} — étape 1"
    assert (two.subject, three.subject) == (f"{first} — étape 2", f"{first} — étape 3")
    raw = next(m for m in smtp_server.messages if m.recipients == ("contact0001@example.com",))
    parsed = raw.parsed()
    assert raw.envelope_from == "bonjour@example.com"
    assert parsed["To"] == "contact0001@example.com"
    assert parsed["From"] == "Équipe Test <bonjour@example.com>"
    assert "List-Unsubscribe" in parsed

    # The waits were kept: each send was claimed at least its wait after the one before.
    steps: dict[str, dict[str, datetime]] = {}
    for row in ledger(deployment.database_url):
        steps.setdefault(row.email, {})[row.step or ""] = row.claimed_at
    for email, claimed in steps.items():
        assert (claimed["step-2"] - claimed["step-1"]).total_seconds() >= 2, email
        assert (claimed["step-3"] - claimed["step-2"]).total_seconds() >= 3, email
