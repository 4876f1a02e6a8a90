"""Evenly spaced places for `sending.rate.per_second`, shared by every worker.

A moving window (see `pace`) caps what is taken in any second, but lets a
second's places go in one burst and the next second's burst follow as soon as
the first leaves the window. A relay sees each message some milliseconds of
network and scheduling jitter after its place was taken, so two bursts a
second apart land in one of its seconds (measured at the relay: 250 in a
second at a limit of 200). A bucket limiter polled by every waiting thread
spread the flow but woke them all at each bucket's start (the herd cost the
workers their CPU). Here each email reserves its own instant instead, 1/rate
after the last one reserved (the generic cell rate algorithm), and its thread
sleeps until then: an even flow, one call per email, no polling.

Neither `limits` nor dramatiq's limiters reserve sub-second instants, hence the
few lines below: a Lua script in Redis (atomic, on Redis's own clock, so
workers on several hosts share one flow) and its in-memory twin.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import redis

# KEYS[1]: the next free instant; ARGV[1]: seconds between places; ARGV[2]: the furthest
# ahead a place may be reserved. Returns {1, wait} (reserved, sleep that long) or
# {0, wait} (nothing reserved: the next free place is that far ahead). Floats travel
# as strings: Redis would truncate a Lua number to an integer.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval, horizon = tonumber(ARGV[1]), tonumber(ARGV[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local ahead = free - now
if ahead > horizon then return {0, tostring(ahead)} end
redis.call('SET', KEYS[1], tostring(free + interval), 'PX', math.ceil((ahead + interval) * 1000) + 1000)
return {1, tostring(ahead)}
"""


class Spacing(Protocol):
    """Reserves the next evenly spaced instant."""

    def reserve(self, horizon: float) -> tuple[bool, float]:
        """(True, seconds to sleep before sending) once a place is reserved, or (False,
        seconds until the next free one) when that is further than `horizon`."""
        ...


class MemorySpacing:
    """The in-process twin (the embedded mode is one process)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._free = 0.0
        self._lock = threading.Lock()

    def reserve(self, horizon: float) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            free = max(self._free, now)
            if free - now > horizon:
                return False, free - now
            self._free = free + self.interval
            return True, free - now


class RedisSpacing:
    """One flow for every process on one Redis."""

    def __init__(self, interval: float, redis_url: str, key: str) -> None:
        self.interval = interval
        self._key = key
        self._script: Any = redis.Redis.from_url(redis_url).register_script(_RESERVE)

    def reserve(self, horizon: float) -> tuple[bool, float]:
        reserved, ahead = self._script(keys=[self._key], args=[self.interval, horizon])
        return bool(reserved), float(ahead)


def spacing_for(per_second: float, redis_url: str | None, key: str) -> Spacing:
    interval = 1.0 / per_second
    return RedisSpacing(interval, redis_url, key) if redis_url else MemorySpacing(interval)
