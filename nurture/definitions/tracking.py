"""nurture.yaml's `tracking:` block → `Tracking`: what counts as a person, and the website.

Apart from `config.py` because its vocabulary (scanner windows, the sites
allowed to load the website script) is its own, each checked with a precise
`file:line: message`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from nurture.definitions import model as m
from nurture.definitions.base import TRACKING_KEYS, Context, did_you_mean
from nurture.definitions.reader import LineDict, LineList
from nurture.events import COUNTS


def parse_tracking(ctx: Context, value: Any, line: int | None) -> m.Tracking:
    if value is None:
        return m.Tracking()
    data = ctx.mapping(value, line, "tracking")
    if data is None:
        return m.Tracking()
    ctx.keys(data, TRACKING_KEYS, "tracking")
    defaults = m.Tracking()
    durations = {
        key: ctx.duration(data, key, "tracking") or getattr(defaults, key)
        for key in ("machine_within", "burst_within", "repeat_within", "visitor_window")
    }
    sites: list[str] = []
    for index, site in enumerate(ctx.strings(data, "sites", "tracking") or ()):
        origin = site_origin(site)
        if origin is None:
            listed = data.get("sites")
            ctx.error(
                listed.line_of(index) if isinstance(listed, LineList) else data.line_of("sites"),
                f"tracking.sites[{index}]: expected a site's origin such as "
                f"https://www.example.com, not {site!r}",
                f"tracking.sites[{index}]",
            )
        elif origin not in sites:
            sites.append(origin)
    return m.Tracking(sites=tuple(sites), **durations)


def site_origin(site: str) -> str | None:
    """``https://www.example.com`` for a site written with or without a trailing slash;
    None for anything that is not an http(s) origin (a path, a wildcard, no host)."""
    try:
        parts = urlsplit(site.strip().rstrip("/"))
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or parts.path or parts.query:
        return None
    if parts.username or parts.password or parts.fragment or "*" in host:
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def parse_count(ctx: Context, data: LineDict, path: str) -> str:
    """A rule's or a step's `count:` ("human", the default, or "all")."""
    value = data.get("count")
    if value is None:
        return "human"
    if value not in COUNTS:
        ctx.error(
            data.line_of("count"),
            f"{path}.count: expected one of {', '.join(COUNTS)}, not {value!r}"
            f"{did_you_mean(str(value), COUNTS)} (human: people only; all: machines' too)",
            f"{path}.count",
        )
        return "human"
    return str(value)
