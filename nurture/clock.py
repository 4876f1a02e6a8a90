"""The one clock.

Every "now" in nurture comes from here so that tests can freeze it (freezegun
patches `datetime`) and `simulate` can drive it as a virtual clock. Times are
always timezone-aware UTC; naive datetimes never leave this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


class Clock:
    """The real wall clock, and what `VirtualClock` overrides.

    `now()` asks whichever clock is current; `using` swaps another in for a simulation or a test.
    """

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock(Clock):
    """A clock that only moves when told to: simulation and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        moment = as_utc(moment)
        if moment > self._now:
            self._now = moment


_current: Clock = Clock()


def now() -> datetime:
    return _current.now()


def get_clock() -> Clock:
    return _current


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (SQLite hands them back naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
