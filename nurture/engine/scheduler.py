"""The scheduler: find due work in the database and hand it to workers.

It never executes a step itself. Each tick leases due enrollments in batches
(a lease, not a lock: a worker that dies lets the lease expire and the work is
found again) and dispatches one message per batch, then does the same for sends
due again (retries, and those orphaned by a dead worker). Several schedulers
are safe: claims are row-level (`SKIP LOCKED` on PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nurture.engine.service import Engine

log = logging.getLogger("nurture.scheduler")

Dispatch = Callable[[Sequence[int]], None]


@dataclass
class TickReport:
    """What one `Scheduler.tick` dispatched; `run` ticks again at once when every batch filled."""

    enrollments: int = 0
    sends: int = 0
    notifications: int = 0
    batches: int = 0
    #: Contacts whose segment standing was due a re-check (a counted event left a window).
    segments: int = 0


class Scheduler:
    """Finds due work in the database and dispatches it to workers; it never runs a step itself.

    Each tick: segment standings due a re-check (judged here: a few rows), due enrollments
    in batches, sends due again and, with `dispatch_notify`, SLA chores and due notifications. `nurture scheduler` and `nurture run` drive it.
    """

    def __init__(
        self,
        engine: Engine,
        dispatch_advance: Dispatch,
        dispatch_deliver: Dispatch,
        dispatch_notify: Dispatch | None = None,
        *,
        interval: float = 1.0,
        max_batches: int = 50,
    ) -> None:
        self.engine = engine
        self.dispatch_advance = dispatch_advance
        self.dispatch_deliver = dispatch_deliver
        self.dispatch_notify = dispatch_notify
        self.interval = interval
        self.max_batches = max_batches
        # Sends handed to workers and when (monotonic): a retry waiting in the queue
        # for a busy worker is not queued again on every tick.
        self._dispatched: dict[int, float] = {}

    def tick(self) -> TickReport:
        report = TickReport()
        # First: an exit from a segment wakes enrollments this same tick claims.
        report.segments = self.engine.recheck_segments()
        for _ in range(self.max_batches):
            ids = self.engine.claim_due()
            if not ids:
                break
            self.dispatch_advance(ids)
            report.enrollments += len(ids)
            report.batches += 1
            if len(ids) < self.engine.options.batch_size:
                break
        sends = self._not_dispatched(self.engine.claim_due_sends())
        if sends:
            self.dispatch_deliver(sends)
            report.sends = len(sends)
        if self.dispatch_notify is not None:
            notifications = self.engine.housekeeping()
            if notifications:
                self.dispatch_notify(notifications)
                report.notifications = len(notifications)
        return report

    def _not_dispatched(self, sends: Sequence[int]) -> list[int]:
        """The due sends not already handed to a worker within the send lease (a worker
        that took one leases it; one lost with its message is queued again after that)."""
        moment = time.monotonic()
        again = self.engine.options.send_lease.total_seconds()
        self._dispatched = {i: t for i, t in self._dispatched.items() if moment - t < again}
        fresh = [send_id for send_id in sends if send_id not in self._dispatched]
        self._dispatched.update(dict.fromkeys(fresh, moment))
        return fresh

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; a tick that filled every batch goes again at once."""
        log.info("scheduler started (interval %.1fs)", self.interval)
        while not stop.is_set():
            try:
                report = self.tick()
            except Exception:  # a database blip must not kill the scheduler
                log.exception("scheduler tick failed; retrying")
                self._dispatched.clear()  # the broker may have lost what it held
                stop.wait(min(self.interval * 5, 30))
                continue
            if report.enrollments or report.sends or report.notifications:
                # What was handed to the workers, not what they sent: an advance sends the
                # emails its steps reach, each logged as it leaves (`delivery.sendlog`).
                log.info(
                    "dispatched to the workers: %d due enrollments, %d sends due again "
                    "(retries), %d notifications",
                    report.enrollments,
                    report.sends,
                    report.notifications,
                )
            if report.batches < self.max_batches:
                stop.wait(self.interval)
