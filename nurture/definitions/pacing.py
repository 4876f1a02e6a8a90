"""`sending.rate`, `sending.connections` and `sending.warmup` → `Pacing`.

How fast the relay may be fed is its own vocabulary (ESPs state it per second
and per day; a new sending domain warms up day by day), checked here with a
precise `file:line: message`.
"""

from __future__ import annotations

from datetime import date

from nurture.definitions import model as m
from nurture.definitions.base import RATE_KEYS, WARMUP_KEYS, Context
from nurture.definitions.reader import LineDict, LineList

#: More connections than this to one relay is a mistake, not a setting.
MAX_CONNECTIONS = 100


def parse_pacing(ctx: Context, data: LineDict) -> m.Pacing:
    rates: dict[str, int | None] = dict.fromkeys(RATE_KEYS)
    if "rate" in data and (r := ctx.mapping(data["rate"], data.line_of("rate"), "sending.rate")):
        ctx.keys(r, RATE_KEYS, "sending.rate")
        if not any(key in r for key in RATE_KEYS):
            ctx.error(
                r.line,
                "sending.rate: give at least one of per_second, per_minute, per_hour, per_day",
                "sending.rate",
            )
        for key in RATE_KEYS:
            value = ctx.number(r, key, "sending.rate", integer=True, minimum=1)
            rates[key] = int(value) if value else None
    connections = ctx.number(data, "connections", "sending", integer=True, minimum=1)
    if connections and connections > MAX_CONNECTIONS:
        ctx.error(
            data.line_of("connections"),
            f"sending.connections: at most {MAX_CONNECTIONS} (relays refuse more), got "
            f"{int(connections)}",
            "sending.connections",
        )
        connections = MAX_CONNECTIONS
    return m.Pacing(
        **rates,
        connections=int(connections) if connections else m.Pacing().connections,
        warmup=_warmup(ctx, data),
    )


def _warmup(ctx: Context, data: LineDict) -> m.Warmup | None:
    if "warmup" not in data:
        return None
    w = ctx.mapping(data["warmup"], data.line_of("warmup"), "sending.warmup")
    if w is None:
        return None
    ctx.keys(w, WARMUP_KEYS, "sending.warmup", required=("since", "daily"))
    since = w.get("since")
    if isinstance(since, str):
        try:
            since = date.fromisoformat(since)
        except ValueError:
            since = None
    if not isinstance(since, date):
        ctx.error(
            w.line_of("since") if "since" in w else w.line,
            "sending.warmup.since: expected the first day of the warm-up (2026-12-01)",
            "sending.warmup.since",
        )
        since = None
    daily = w.get("daily")
    if (
        not isinstance(daily, LineList)
        or not daily
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in daily)
    ):
        ctx.error(
            w.line_of("daily") if "daily" in w else w.line,
            "sending.warmup.daily: expected a list of daily quotas ([200, 500, 1000, …])",
            "sending.warmup.daily",
        )
        return None
    if since is None:
        return None
    return m.Warmup(since, tuple(int(n) for n in daily))
