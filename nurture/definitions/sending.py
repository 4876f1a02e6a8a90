"""nurture.yaml's `sending:` block → `Sending`: addresses, windows, caps, consent rules.

Apart from `config.py` because sending rules grew their own vocabulary (send
windows, frequency caps, consent, soft-bounce limit, the unsubscribe
mailto) and each is checked with a precise `file:line: message`.
"""

from __future__ import annotations

import re
from datetime import time
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nurture.definitions import model as m
from nurture.definitions.base import (
    CAP_KEYS,
    HOURS_PATTERN,
    SENDING_KEYS,
    WINDOW_KEYS,
    Context,
    did_you_mean,
)
from nurture.definitions.pacing import parse_pacing
from nurture.definitions.reader import LineDict


def parse_sending(ctx: Context, value: Any, line: int | None) -> m.Sending:
    if value is None:
        return m.Sending()
    data = ctx.mapping(value, line, "sending")
    if data is None:
        return m.Sending()
    ctx.keys(data, SENDING_KEYS, "sending")
    defaults = m.Sending()
    from_address = ctx.string(data, "from", "sending") or defaults.from_address
    if "@" not in parseaddr(from_address)[1]:
        ctx.error(
            data.line_of("from"),
            f"sending.from: not an email address: {from_address!r}",
            "sending.from",
        )
    reply_to = ctx.string(data, "reply_to", "sending")
    if reply_to and "@" not in parseaddr(reply_to)[1]:
        ctx.error(
            data.line_of("reply_to"),
            f"sending.reply_to: not an email address: {reply_to!r}",
            "sending.reply_to",
        )
    timezone = ctx.string(data, "default_timezone", "sending") or defaults.default_timezone
    if not valid_timezone(timezone):
        ctx.error(
            data.line_of("default_timezone"),
            f"sending.default_timezone: unknown timezone {timezone!r} (an IANA name such as "
            "Europe/Paris)",
            "sending.default_timezone",
        )
    window = None
    if "window" in data and (
        w := ctx.mapping(data["window"], data.line_of("window"), "sending.window")
    ):
        window = _window(ctx, w)
    cap = None
    if "frequency_cap" in data and (
        c := ctx.mapping(
            data["frequency_cap"], data.line_of("frequency_cap"), "sending.frequency_cap"
        )
    ):
        ctx.keys(c, CAP_KEYS, "sending.frequency_cap", required=("max", "per"))
        most = ctx.number(c, "max", "sending.frequency_cap", integer=True, minimum=1)
        per = ctx.duration(c, "per", "sending.frequency_cap")
        if most and per:
            cap = m.FrequencyCap(int(most), per)
    limit = ctx.number(data, "soft_bounce_limit", "sending", integer=True, minimum=1)
    return m.Sending(
        from_address,
        reply_to,
        window,
        timezone,
        cap,
        require_consent=_flag(ctx, data, "require_consent", defaults.require_consent),
        soft_bounce_limit=int(limit) if limit else defaults.soft_bounce_limit,
        unsubscribe_mailto=_mailto(ctx, data),
        pacing=parse_pacing(ctx, data),
        return_path=_return_path(ctx, data),
    )


def _flag(ctx: Context, data: LineDict, key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        ctx.error(
            data.line_of(key),
            f"sending.{key}: expected true or false, got {value!r}",
            f"sending.{key}",
        )
        return default
    return value


def _mailto(ctx: Context, data: LineDict) -> str | None:
    """An address; `false` for no mailto; absent for unsubscribe@<from domain>."""
    value = data.get("unsubscribe_mailto")
    if value is None:
        return None
    if value is False:
        return ""
    address = parseaddr(value)[1] if isinstance(value, str) else ""
    if not address or "@" not in address or address != value.strip():
        ctx.error(
            data.line_of("unsubscribe_mailto"),
            f"sending.unsubscribe_mailto: expected a bare address (unsubscribe@example.com) "
            f"or false, got {value!r}",
            "sending.unsubscribe_mailto",
        )
        return None
    return address


#: ``{send_id}`` once in the local part of a bare address (VERP, see `m.Sending.return_path`).
_RETURN_PATH = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`|~.-]*\{send_id\}[A-Za-z0-9!#$%&'*+/=?^_`|~.-]*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\Z"
)


def _return_path(ctx: Context, data: LineDict) -> str | None:
    """``bounces+{send_id}@example.com``: the envelope sender, naming the send."""
    value = data.get("return_path")
    if value is None:
        return None
    if not isinstance(value, str) or not _RETURN_PATH.match(value.strip()):
        ctx.error(
            data.line_of("return_path"),
            "sending.return_path: expected a bare address with {send_id} once in its local "
            f"part (bounces+{{send_id}}@example.com), got {value!r}",
            "sending.return_path",
        )
        return None
    return value.strip()


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _window(ctx: Context, data: LineDict) -> m.SendWindow | None:
    ctx.keys(data, WINDOW_KEYS, "sending.window")
    days = ctx.strings(data, "days", "sending.window")
    day_set: set[int] = set()
    for day in days or m.WEEKDAYS:
        index = m.WEEKDAY_NAMES.get(day.lower())
        if index is None:
            ctx.error(
                data.line_of("days"),
                f"sending.window.days: unknown day {day!r}"
                f"{did_you_mean(day, m.WEEKDAYS)} (mon … sun)",
                "sending.window.days",
            )
        else:
            day_set.add(index)
    hours = data.get("hours", "00:00-24:00")
    match = HOURS_PATTERN.match(str(hours))
    if not match:
        ctx.error(
            data.line_of("hours"),
            f"sending.window.hours: expected 'HH:MM-HH:MM', got {hours!r}",
            "sending.window.hours",
        )
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start = time(h1, m1)
    end = time.max if (h2, m2) == (24, 0) else time(h2 % 24, m2)
    if (h2, m2) > (24, 0) or end <= start:
        ctx.error(
            data.line_of("hours"),
            f"sending.window.hours: the window must end after it starts, got {hours!r}",
            "sending.window.hours",
        )
        return None
    return m.SendWindow(frozenset(day_set), start, end)
