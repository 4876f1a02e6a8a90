"""Who opened, who clicked: a person, a machine, or the same signal again.

Mail-security gateways (Microsoft Defender Safe Links, Proofpoint, Mimecast,
Barracuda) fetch every link of every email within seconds of delivery; Apple
Mail Privacy Protection and Gmail's image proxy load every pixel; a link
forwarded or pasted into a chat can be fetched any number of times. Scored as
interest, that traffic alone walks cold contacts up to sales. So every open
and click is classified here, and the class stays on the event (`Traffic`):
nothing is dropped, reports and exports still see every fetch, but only a
person's signals score and end a `wait_for` unless a rule says `count: all`.

The rules, in the order they are tried (the first that applies names the reason):

- a HEAD request, or a browser's prefetch (``Purpose: prefetch``): machine;
- an open through a known image proxy (Gmail's, Yahoo's, Apple's): machine;
- a user agent that `crawlerdetect` or our gateway list knows, or none at all: machine;
- an open or click within `tracking.machine_within` of the email leaving: machine
  (nobody reads that fast; gateways and Apple's proxy fetch on arrival);
- a click within `tracking.burst_within` of a click on another link of the same
  email: machine (and the earlier click too: `burst_partners`);
- the same email opened, or its same link clicked, by a person within
  `tracking.repeat_within`: repeat;
- anything else: human.

Pure: the ingest hands in the request's facts (`Hit`), the send's time and
the email's earlier opens and clicks.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from nurture.definitions.model import Tracking
from nurture.events import EventType, Traffic

#: Opens and clicks: the signals machines fake.
CLASSIFIED = frozenset({EventType.EMAIL_OPENED, EventType.EMAIL_CLICKED})

#: Mail-security gateways and link checkers `crawlerdetect` does not list (it knows
#: Barracuda, curl, python-requests, Google's image proxy and thousands more).
_GATEWAYS = re.compile(
    r"proofpoint|mimecast|safelinks|safe links|ms-safelinks|barracuda|ironport|"
    r"symantec|messagelabs|forcepoint|trendmicro|trend micro|sophos|fortiguard|"
    r"zscaler|checkpoint|check point|cisco|linkchecker|link checker|urldefense|"
    r"microsoft office existence discovery|ms web services client protocol",
    re.IGNORECASE,
)
#: Image proxies that load every pixel whether or not a person looks (opens only).
_PROXIES = (
    ("googleimageproxy", "Gmail's image proxy"),
    ("ggpht.com", "Gmail's image proxy"),
    ("yahoomailproxy", "Yahoo's image proxy"),
)
#: Apple Mail Privacy Protection loads pixels from Apple's network with a bare agent.
_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
_BARE_AGENT = "Mozilla/5.0"
#: Why clicks on several links of one email at once are a machine's.
BURST_REASON = "several links of the email at once (a scanner)"


@dataclass(frozen=True)
class Hit:
    """What the request that carried an open or a click says about who sent it.

    Tracking links and ESP webhooks that report a user agent fill it; an event
    without one (an import, the API) is judged on timing and repeats only.
    """

    method: str = "GET"
    user_agent: str | None = None
    address: str | None = None
    prefetch: bool = False


@dataclass(frozen=True)
class Earlier:
    """An open or click of the same email recorded before."""

    event_id: str
    type: str
    at: datetime
    url: str | None
    traffic: str


@dataclass(frozen=True)
class Verdict:
    traffic: Traffic
    reason: str | None = None


HUMAN = Verdict(Traffic.HUMAN)


def classify(
    event_type: str,
    at: datetime,
    url: str | None,
    hit: Hit | None,
    sent_at: datetime | None,
    earlier: Sequence[Earlier],
    settings: Tracking,
) -> Verdict:
    """The class of one open or click (see the module docstring for the rules)."""
    if hit is not None:
        verdict = _by_request(event_type, hit)
        if verdict is not None:
            return verdict
    if sent_at is not None and sent_at <= at < sent_at + settings.machine_within:
        what = "clicked" if event_type == EventType.EMAIL_CLICKED else "opened"
        return Verdict(
            Traffic.MACHINE, f"{what} {_seconds(at - sent_at)} after delivery (a scanner)"
        )
    if event_type == EventType.EMAIL_CLICKED and burst_partners(at, url, earlier, settings):
        return Verdict(Traffic.MACHINE, BURST_REASON)
    for before in earlier:
        if (
            before.type == event_type
            and before.traffic == Traffic.HUMAN
            and (event_type != EventType.EMAIL_CLICKED or before.url == url)
            and before.at <= at < before.at + settings.repeat_within
        ):
            what = "link clicked" if event_type == EventType.EMAIL_CLICKED else "email opened"
            return Verdict(Traffic.REPEAT, f"{what} again (first at {before.at:%Y-%m-%d %H:%M})")
    return HUMAN


def burst_partners(
    at: datetime, url: str | None, earlier: Sequence[Earlier], settings: Tracking
) -> list[Earlier]:
    """Clicks on other links of the same email within `burst_within` of this one: with
    it, a machine following every link (they are machine too, whatever they were)."""
    window = settings.burst_within
    return [
        before
        for before in earlier
        if before.type == EventType.EMAIL_CLICKED
        and before.url != url
        and abs(at - before.at) <= window
    ]


def _by_request(event_type: str, hit: Hit) -> Verdict | None:
    if hit.method.upper() == "HEAD":
        return Verdict(Traffic.MACHINE, "HEAD request")
    if hit.prefetch:
        return Verdict(Traffic.MACHINE, "prefetch")
    agent = (hit.user_agent or "").strip()
    if event_type == EventType.EMAIL_OPENED:
        lowered = agent.lower()
        for marker, name in _PROXIES:
            if marker in lowered:
                return Verdict(Traffic.MACHINE, f"image proxy: {name}")
        if agent == _BARE_AGENT or _from_apple(hit.address):
            return Verdict(Traffic.MACHINE, "image proxy: Apple Mail Privacy Protection")
    if not agent:
        return Verdict(Traffic.MACHINE, "no user agent")
    machine = machine_agent(agent)
    if machine is not None:
        return Verdict(Traffic.MACHINE, f"user agent: {machine}")
    return None


def machine_agent(agent: str) -> str | None:
    """The part of a user agent that names a scanner, crawler or link checker, or None."""
    return _machine_agent(agent[:500])


@lru_cache(maxsize=4096)
def _machine_agent(agent: str) -> str | None:
    found = _GATEWAYS.search(agent)
    if found:
        return found.group(0)
    with _DETECTOR_LOCK:  # the detector keeps its last match on itself
        detector = _detector()
        if detector.isCrawler(agent):
            return str(detector.getMatches() or "crawler")[:80]
    return None


_DETECTOR_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _detector() -> Any:
    """crawlerdetect compiles thousands of patterns: once per process, on first use."""
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def _from_apple(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address) in _APPLE_NETWORK
    except ValueError:
        return False


def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"
