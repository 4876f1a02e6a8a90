"""When an email may leave: send windows in the contact's timezone, frequency caps.

Pure functions of the rules, the contact's timezone, its recent sends and now.
A send that may not leave now is deferred to the first moment it may — never
dropped. Windows are computed in the contact's own IANA zone on local wall
time, so "09:00-18:00" stays 09:00-18:00 across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nurture.definitions import model as m


@dataclass(frozen=True)
class Deferral:
    """Not now but at `until`, because of `reason`: the answer of `may_send` and the send gate.

    The executor turns it into a wait on the send step.
    """

    until: datetime
    reason: str  # "window", "cap", "paused" or "previous-email" (engine/service.py)


def next_window_opening(window: m.SendWindow, now: datetime, timezone: str) -> datetime | None:
    """None if `now` is inside the window, else the next moment it opens."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if local.weekday() in window.days and window.start <= local.time() < window.end:
        return None
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opening = datetime.combine(day, window.start, tzinfo=zone)
        # A wall time skipped by a DST change (02:30 on spring-forward day) is
        # moved forward by the zone's offset: the first real instant after it.
        opening = opening.astimezone(now.tzinfo).astimezone(zone)
        if opening > local:
            return opening.astimezone(now.tzinfo)
    return None  # no day of the week is allowed; validate forbids this


def cap_release(cap: m.FrequencyCap, recent: Sequence[datetime], now: datetime) -> datetime | None:
    """None if the cap allows one more email now, else when the oldest counted one ages out."""
    counted = sorted(at for at in recent if now - cap.per < at <= now)
    if len(counted) < cap.max:
        return None
    return counted[len(counted) - cap.max] + cap.per


def may_send(
    sending: m.Sending,
    timezone: str,
    recent: Sequence[datetime],
    now: datetime,
    paused_until: datetime | None = None,
) -> Deferral | None:
    """None when an email may leave now, else the first moment it may, and why.

    `paused_until` is the end of a pause the contact asked for: nothing leaves
    before it, and after it the window and the cap apply as usual.
    """
    moment, reason = now, None
    if paused_until is not None and paused_until > now:
        moment, reason = paused_until, "paused"
    for _ in range(16):  # a cap release may land outside the window and vice versa
        changed = False
        if sending.frequency_cap is not None:
            release = cap_release(sending.frequency_cap, recent, moment)
            if release is not None and release > moment:
                moment, reason, changed = release, reason or "cap", True
        if sending.window is not None:
            opening = next_window_opening(sending.window, moment, timezone)
            if opening is not None:
                moment, reason, changed = opening, reason or "window", True
        if not changed:
            break
    return None if reason is None else Deferral(moment, reason)
