"""The send rate: never exceeded in any window, by any number of workers; an email
over the limit stays due and leaves later, never failed or dropped."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.testing as testing
from nurture.definitions import model as m
from nurture.definitions.loader import load_project
from nurture.delivery.pace import THROTTLED, Pace
from nurture.engine.service import EngineOptions
from nurture.store.metrics import read_figures
from nurture.store.models import Send
from nurture.testing import Harness

REDIS = "redis://127.0.0.1:6379/0"


def test_a_window_is_never_exceeded_and_a_turn_waits_for_a_place() -> None:
    pace = Pace(m.Pacing(per_minute=5), key=f"test-{uuid.uuid4()}")
    taken = [pace.turn(max_wait=0) is None for _ in range(8)]
    assert taken == [True] * 5 + [False] * 3
    wait = pace.turn(max_wait=0)
    assert wait is not None and 50 < wait <= 60.0  # the first place frees up in a minute


def test_places_per_second_come_evenly_never_in_a_burst() -> None:
    """A second's places spread over the second (a burst a second after another would
    reach a distant relay inside one of its seconds), at a little under the limit."""
    pace = Pace(m.Pacing(per_second=40), key=f"test-{uuid.uuid4()}")
    assert [pace.turn(max_wait=0) is None for _ in range(5)] == [True] * 1 + [False] * 4
    taken: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        assert pace.turn(max_wait=1) is None  # a place always comes within a slice
        taken.append(time.monotonic())
    assert busiest(taken, 1.0) in range(30, 41)  # 37/s planned: 95 % of the limit
    assert busiest(taken, 0.1) <= 5  # 40 at once is what a moving window alone allows


def busiest(moments: list[float], span: float) -> int:
    """The most moments in any `span` seconds (sliding)."""
    return max(sum(1 for t in moments if start <= t < start + span) for start in moments)


@pytest.mark.redis
def test_workers_in_several_processes_share_the_limit_through_redis() -> None:
    """Two `Pace`s on one Redis (two worker processes), four threads each, all trying
    at once: never more than the limit in the window."""
    key = f"test-{uuid.uuid4()}"
    paces = [Pace(m.Pacing(per_minute=20), REDIS, key=key) for _ in range(2)]
    taken: list[float] = []
    lock = threading.Lock()

    def worker(pace: Pace) -> None:
        for _ in range(15):
            if pace.turn(max_wait=0) is None:
                with lock:
                    taken.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(p,)) for p in paces for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 20  # 120 tries within well under a second: exactly the limit


@pytest.mark.redis
def test_workers_in_several_processes_share_one_even_flow_through_redis() -> None:
    key = f"test-{uuid.uuid4()}"
    paces = [Pace(m.Pacing(per_second=40), REDIS, key=key) for _ in range(2)]
    taken: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()

    def worker(pace: Pace) -> None:
        while time.monotonic() - started < 2.5:
            if pace.turn(max_wait=0.5) is None:
                with lock:
                    taken.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(p,)) for p in paces for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert busiest(taken, 1.0) in range(30, 41)
    assert busiest(taken, 0.1) <= 5


def test_the_warmup_quota_grows_day_by_day() -> None:
    warmup = m.Warmup(date(2026, 12, 1), (200, 500, 1000))
    assert [warmup.quota(date(2026, 12, d)) for d in (1, 2, 3, 4)] == [200, 500, 1000, None]
    assert warmup.quota(date(2026, 11, 30)) == 200


CONFIG = "stages: [subscriber, lead, sql]\nprospect_stage: sql\n"
LEAD = "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
WELCOME = """\
---
subject: "Bienvenue"
---
<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour.
<a href="{{ unsubscribe_url }}">Se désabonner</a></mj-text></mj-column></mj-section></mj-body></mjml>
"""


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Harness]:
    root = testing.write_project(
        tmp_path / "project", CONFIG, {"lead-nurture": LEAD}, {"lead/welcome": WELCOME}
    )
    pace = Pace(m.Pacing(per_minute=3), key=f"test-{uuid.uuid4()}")
    harness = Harness(load_project(root), sessions, EngineOptions(pace=pace))
    with clock.using(harness.clock):
        yield harness


def test_emails_over_the_limit_stay_due_and_leave_later(world: Harness) -> None:
    rows = "".join(f"lead{n}@example.com,lead\n" for n in range(8))
    world.import_csv("email,stage\n" + rows)
    world.tick()
    assert len(world.transport.messages) == 3
    with world.sessions() as session:
        sends = list(session.scalars(select(Send).order_by(Send.id)))
        figures = read_figures(session, clock.now())
    waiting = [s for s in sends if s.status == "claimed"]
    assert len(waiting) == 5 and {s.error for s in waiting} == {THROTTLED}
    assert all(s.next_attempt_at > clock.now() and s.attempts == 0 for s in waiting)
    assert figures.sends_throttled == 5
    # A minute later (a fresh window) the rest leave, each once.
    world.engine.options.pace = Pace(m.Pacing(per_minute=10), key=f"test-{uuid.uuid4()}")
    world.engine._deliverer = None  # built again with the new pace
    world.later(timedelta(minutes=2))
    recipients = sorted(message.email.to for message in world.transport.messages)
    assert recipients == sorted(f"lead{n}@example.com" for n in range(8))
    with world.sessions() as session:
        assert {s.status for s in session.scalars(select(Send))} == {"sent"}


def test_with_redis_unreachable_an_email_waits_rather_than_leaves_unpaced() -> None:
    from nurture.delivery.pace import UNREADABLE_WAIT
    from tests.smtp_server import free_port

    pace = Pace(m.Pacing(per_second=40), f"redis://127.0.0.1:{free_port()}/0", key="gone")
    assert pace.turn(max_wait=0) == UNREADABLE_WAIT
