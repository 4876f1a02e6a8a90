"""The traffic classifier's rules one by one, and the settings that tune them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nurture.definitions.config import parse_config
from nurture.definitions.model import Tracking
from nurture.events import Traffic
from nurture.lifecycle.traffic import Earlier, Hit, classify, machine_agent

SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=1)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
URL = "https://example.com/guide"
SETTINGS = Tracking()


def _click(
    hit: Hit | None = None, at: datetime = LATER, earlier: tuple[Earlier, ...] = ()
) -> tuple[str, str | None]:
    verdict = classify("email.clicked", at, URL, hit, SENT, earlier, SETTINGS)
    return verdict.traffic.value, verdict.reason


@pytest.mark.parametrize(
    ("agent", "named"),
    [
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32.3", "python-requests"),
        ("Barracuda Sentinel (EE)", "Barracuda"),
        ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "Proofpoint"),
        ("Mimecast URL protect", "Mimecast"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
    ],
)
def test_scanners_and_crawlers_are_named_by_their_agent(agent: str, named: str) -> None:
    found = machine_agent(agent)
    assert found is not None and named.lower() in found.lower()
    assert _click(Hit(user_agent=agent)) == ("machine", f"user agent: {found}")


def test_a_browser_an_hour_later_is_a_person() -> None:
    assert machine_agent(BROWSER) is None
    assert _click(Hit(user_agent=BROWSER)) == ("human", None)
    assert _click(None) == ("human", None)  # an import or the API: timing only


def test_requests_that_no_reader_makes_are_machines() -> None:
    assert _click(Hit("HEAD", BROWSER)) == ("machine", "HEAD request")
    assert _click(Hit(user_agent=BROWSER, prefetch=True)) == ("machine", "prefetch")
    assert _click(Hit(user_agent="")) == ("machine", "no user agent")


def test_opens_through_image_proxies_are_machines_clicks_through_apple_are_not() -> None:
    def opened(hit: Hit) -> str | None:
        return classify("email.opened", LATER, None, hit, SENT, (), SETTINGS).reason

    assert opened(Hit(user_agent="Mozilla/5.0")) == "image proxy: Apple Mail Privacy Protection"
    assert opened(Hit(user_agent=BROWSER, address="17.58.63.10")) == (
        "image proxy: Apple Mail Privacy Protection"
    )
    assert opened(Hit(user_agent="YahooMailProxy; https://help.yahoo.com")) == (
        "image proxy: Yahoo's image proxy"
    )
    assert opened(Hit(user_agent=BROWSER, address="192.0.2.7")) is None
    assert _click(Hit(user_agent=BROWSER, address="17.58.63.10")) == ("human", None)


def test_timing_delivery_window_and_repeats() -> None:
    assert _click(at=SENT + timedelta(seconds=4)) == (
        "machine",
        "clicked 4s after delivery (a scanner)",
    )
    assert _click(at=SENT + timedelta(seconds=10)) == ("human", None)
    first = Earlier("click-1", "email.clicked", LATER, URL, Traffic.HUMAN)
    again = LATER + timedelta(days=2)
    assert _click(at=again, earlier=(first,))[0] == "repeat"
    # after the window, and after a machine's fetch only, it counts again
    assert _click(at=LATER + timedelta(days=31), earlier=(first,)) == ("human", None)
    scanner = Earlier("click-0", "email.clicked", SENT, URL, Traffic.MACHINE)
    assert _click(at=again, earlier=(scanner,)) == ("human", None)
    other_link = Earlier("click-2", "email.clicked", LATER, "https://example.com/x", "human")
    assert _click(at=again, earlier=(other_link,)) == ("human", None)
    assert _click(at=LATER + timedelta(milliseconds=300), earlier=(other_link,)) == (
        "machine",
        "several links of the email at once (a scanner)",
    )


def test_tracking_settings_and_count_are_checked_with_their_line() -> None:
    text = (
        "stages: [lead, sql]\nprospect_stage: sql\n"
        "scoring:\n  rules:\n    - {event: email.clicked, points: 5, count: everything}\n"
        "tracking:\n  machine_within: 30s\n  repeat_within: soon\n"
        "  sites: [https://www.example.com/, 'https://example.com/blog']\n"
    )
    config, problems = parse_config(text, "nurture.yaml")
    assert config is None
    assert [str(p) for p in problems] == [
        "nurture.yaml:5: scoring.rules[0].count: expected one of human, all, not 'everything' "
        "(human: people only; all: machines' too)",
        "nurture.yaml:8: tracking.repeat_within: invalid duration 'soon' (use a number and a "
        "unit: 30s, 15m, 36h, 2d, 1w)",
        "nurture.yaml:9: tracking.sites[1]: expected a site's origin such as "
        "https://www.example.com, not 'https://example.com/blog'",
    ]
    good, problems = parse_config(
        text.replace("everything", "all")
        .replace("soon", "2d")
        .replace(", 'https://example.com/blog'", ""),
        "nurture.yaml",
    )
    assert problems == [] and good is not None
    assert good.tracking == Tracking(
        machine_within=timedelta(seconds=30),
        repeat_within=timedelta(days=2),
        sites=("https://www.example.com",),
    )
    assert good.scoring.rules[0].count == "all"
