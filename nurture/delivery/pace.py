"""The send rate: `sending.rate` and `sending.warmup`, shared by every worker.

ESPs and mailbox providers take mail at a stated pace (Amazon SES starts an
account at 14 emails a second); past it they refuse (454, 421) or throttle a
new domain. `Pace.turn` takes one email's place in every configured window
before it is handed to the relay. The windows are moving windows from the
`limits` package, kept in Redis when `NURTURE_REDIS_URL` is set (its Lua
scripts make each take atomic, so no number of workers exceeds the limit in
any window), in process memory otherwise (the embedded mode is one process).

`per_second` places are also evenly spaced (`spacing`), at `SPREAD_HEADROOM`
of the limit: the relay, which sees each message after some jitter, counts
an even flow that jitter does not push over the limit.

An email that finds no place soon (`MAX_WAIT`) is not failed or dropped: the
deliverer leaves it due and it leaves later (`sends.error` says it waits for
`sending.rate`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from nurture.definitions import model as m
from nurture.delivery.spacing import Spacing, spacing_for

#: Longest a worker thread waits for a place before leaving the rest of its batch due.
MAX_WAIT = 2.0
#: What `sends.error` says of an email left due by the limit.
THROTTLED = "throttled: waiting for sending.rate"
_KEY = "nurture-send"
#: The share of `per_second` the even flow runs at: the margin the relay's jitter needs.
SPREAD_HEADROOM = 0.94
#: How long an email waits when Redis, which keeps the windows, does not answer (seconds).
UNREADABLE_WAIT = 5.0
logger = logging.getLogger(__name__)
#: How late after its reserved instant an email may still leave on it (seconds).
LATE = 0.01


class Pace:
    """Takes places in the send-rate windows (see the module docstring)."""

    def __init__(self, pacing: m.Pacing, redis_url: str | None = None, key: str = _KEY) -> None:
        self.pacing = pacing
        self._key = key
        storage: Any = storage_from_string(redis_url) if redis_url else MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self._spacing: Spacing | None = None
        if pacing.per_second is not None:
            self._spacing = spacing_for(
                pacing.per_second * SPREAD_HEADROOM, redis_url, f"{key}-spacing"
            )
        self._fixed: list[RateLimitItem] = [
            item(amount)
            for item, amount in (
                (RateLimitItemPerSecond, pacing.per_second),
                (RateLimitItemPerMinute, pacing.per_minute),
                (RateLimitItemPerHour, pacing.per_hour),
                (RateLimitItemPerDay, pacing.per_day),
            )
            if amount is not None
        ]

    def _items(self) -> list[tuple[RateLimitItem, str]]:
        items = [(item, self._key) for item in self._fixed]
        warmup = self.pacing.warmup
        if warmup is not None:
            today = datetime.now(UTC).date()
            quota = warmup.quota(today)
            if quota is not None:
                # A day's quota is that day's: the key changes with the date.
                items.append((RateLimitItemPerDay(quota), f"{self._key}-warmup-{today}"))
        return items

    def turn(self, max_wait: float = MAX_WAIT) -> float | None:
        """Take one email's place in every window, waiting up to `max_wait` seconds for
        it; None once taken, else how many seconds until one may free up."""
        deadline = time.monotonic() + max_wait
        while True:
            try:
                wait = self._take(deadline)
            except (RedisError, OSError) as exc:
                # The limit cannot be read: no email leaves unpaced; each stays due and
                # leaves once Redis answers again (never failed, never sent twice).
                logger.warning("sending.rate: Redis did not answer (%s)", type(exc).__name__)
                return UNREADABLE_WAIT
            if wait is None:
                return None
            if time.monotonic() + wait > deadline:
                return wait
            time.sleep(wait)

    def _take(self, deadline: float) -> float | None:
        items = self._items()
        for item, key in items:
            if not self._limiter.test(item, key):
                return self._wait(item, key)
        instant: float | None = None
        if self._spacing is not None:
            reserved, ahead = self._spacing.reserve(max(deadline - time.monotonic(), 0.0))
            if not reserved:
                return ahead
            instant = time.monotonic() + ahead
            time.sleep(ahead)  # this email's instant in the even flow
        for item, key in items:
            if not self._limiter.hit(item, key):
                # Another worker took the last place between test and hit; the places
                # already taken here stay taken (never more than the limit, maybe less).
                return self._wait(item, key)
        if instant is not None and time.monotonic() - instant > LATE:
            # Late past the instant (woken late on a busy core, a slow Redis answer):
            # going now would bunch with the emails whose instants these are. Checked
            # last, just before the email is handed over; its window places stay taken.
            return 0.0
        return None

    def _wait(self, item: RateLimitItem, key: str) -> float:
        reset, _remaining = self._limiter.get_window_stats(item, key)
        return max(reset - time.time(), 0.005)


def pace_for(pacing: m.Pacing, redis_url: str | None) -> Pace | None:
    """The `Pace` of a project's `sending` rules, or None when nothing limits the rate."""
    return Pace(pacing, redis_url) if pacing.limited else None
