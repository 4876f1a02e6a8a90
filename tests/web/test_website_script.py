"""The website script in a real browser, and its beacon's rules.

A static site is served by the test on one local port, nurture on another (so
the beacon is cross-origin, as in production); headless Chromium follows a
tracked link of a real email to the site, then views /pricing. The visit must
score for the contact and can move them up a stage.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.testing as testing
from nurture.store.models import Event
from nurture.web.server import bound_port, serve_in_thread
from tests.web.conftest import BASE_URL, CONTACTS, Web
from tests.web.test_sales_browser import browser  # noqa: F401  (the Chromium fixture)

BROWSER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
scoring:
  rules:
    - {{event: email.clicked, points: 10, max_per_day: 3}}
    - {{event: page.visited, when: "'/pricing' in (event.url or '')", points: 15, max_per_day: 2}}
    - {{event: form.submitted, points: 5, max_per_day: 2}}
  thresholds: {{lead: 5, mql: 25, sql: 100}}
tracking:
  sites: [{site}]
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
"""
WELCOME = """\
---
subject: "Bienvenue"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour, <a href="{site}/welcome.html">notre guide</a>.
<a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
PAGE = """<!doctype html><html><head><title>{title}</title>
<script src="{nurture}/t/nurture.js" data-site="{site}" async></script></head>
<body><h1>{title}</h1>{body}</body></html>"""
FORM = """<form id="contact" onsubmit="event.preventDefault()">
<input type="email" name="email"><label><input type="checkbox" data-nurture-consent="News OK">
News</label><button type="submit">Send</button></form>"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static site on a free local port: (its folder, its origin)."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def world(
    tmp_path: Path, sessions: sessionmaker[Session], site: tuple[Path, str]
) -> Iterator[tuple[Web, str, str]]:
    """Anne (lead) got the welcome email linking to the site; nurture is served on
    its own port: (the world, nurture's URL, the site's origin)."""
    folder, origin = site
    root = testing.write_project(
        tmp_path / "project",
        CONFIG.format(site=origin),
        {"lead-nurture": LEAD},
        {"lead/welcome": WELCOME.format(site=origin)},
    )
    web = Web(root, sessions, tmp_path)
    with clock.using(web.clock):
        web.import_rows(CONTACTS)
        web.tick()
        web.set_up()
        server, thread = serve_in_thread(web.app, "127.0.0.1", 0)
        nurture = f"http://127.0.0.1:{bound_port(server)}"
        for name, title, body in (
            ("welcome", "Guide", '<a href="pricing.html">Tarifs</a>'),
            ("pricing", "Tarifs", ""),
            ("contact", "Contact", FORM),
        ):
            (folder / f"{name}.html").write_text(
                PAGE.format(title=title, nurture=nurture, site=origin, body=body)
            )
        try:
            yield web, nurture, origin
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the beacon never arrived")
        time.sleep(0.1)


def _visits(web: Web, contact_id: int | None = None) -> list[Event]:
    with web.sessions() as session:
        query = select(Event).where(Event.type == "page.visited").order_by(Event.at, Event.id)
        if contact_id is not None:
            query = query.where(Event.contact_id == contact_id)
        return list(session.scalars(query))


def test_a_reader_who_clicks_then_views_pricing_scores_and_moves_up(
    world: tuple[Web, str, str],
    browser: Any,  # noqa: F811
) -> None:
    web, nurture, origin = world
    anne = web.contact()
    assert (anne.stage, anne.score) == ("lead", 0)
    [message] = web.sent_to("anne@example.com")
    click = next(u for u in web.links(message) if u.startswith(BASE_URL + "/t/c/"))
    web.move_clock(minutes=30)
    page = browser.new_context(user_agent=BROWSER_AGENT).new_page()
    page.goto(nurture + click.removeprefix(BASE_URL))
    assert page.url == f"{origin}/welcome.html"  # the reference left the address bar
    _wait_for(lambda: len(_visits(web, anne.id)) == 1)
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["nurture_id"]
    assert "anne" not in json.dumps(cookies) and str(anne.id) != cookies[0]["value"]
    page.click("text=Tarifs")
    _wait_for(lambda: len(_visits(web, anne.id)) == 2)
    welcome, pricing = _visits(web, anne.id)
    assert welcome.properties["url"] == f"{origin}/welcome.html"
    assert (pricing.properties["url"], pricing.properties["title"]) == (
        f"{origin}/pricing.html",
        "Tarifs",
    )
    assert pricing.properties["referrer"] == f"{origin}/welcome.html"
    anne = web.contact()
    assert anne.score == pytest.approx(25, abs=0.01)  # the click 10, /pricing 15
    assert anne.stage == "mql"


def test_an_anonymous_visitor_is_attached_when_a_form_names_them(
    world: tuple[Web, str, str],
    browser: Any,  # noqa: F811
) -> None:
    web, _nurture, origin = world
    page = browser.new_context(user_agent=BROWSER_AGENT).new_page()
    page.goto(f"{origin}/pricing.html")
    page.goto(f"{origin}/contact.html")
    _wait_for(lambda: _anonymous_visits(web) == 2)
    assert _visits(web) == []
    page.fill("input[type=email]", "Zoe@Example.com")
    page.check("[data-nurture-consent]")
    page.click("button")
    _wait_for(lambda: len(_visits(web)) == 2)
    zoe = web.contact("zoe@example.com")
    assert [e.contact_id for e in _visits(web)] == [zoe.id, zoe.id]
    assert zoe.consent_status == "granted"
    assert zoe.score == pytest.approx(20, abs=0.01)  # the form 5, /pricing 15
    assert _anonymous_visits(web) == 0


def _anonymous_visits(web: Web) -> int:
    from nurture.store.models import SiteVisit

    with web.sessions() as session:
        return len(list(session.scalars(select(SiteVisit))))


# --- the beacon's rules, without a browser ----------------------------------------------


@pytest.fixture
def beaconing(world: tuple[Web, str, str]) -> tuple[Web, str]:
    web, _nurture, origin = world
    return web, origin


def _beacon(web: Web, origin: str, body: Any, **headers: str) -> Any:
    return web.client.post(
        "/t/s",
        content=json.dumps(body),
        headers={
            "Origin": origin,
            "Content-Type": "text/plain",
            "User-Agent": BROWSER_AGENT,
            **headers,
        },
    )


def test_the_beacon_takes_only_its_sites_people_and_real_beacons(
    beaconing: tuple[Web, str],
) -> None:
    web, origin = beaconing
    visit = {"v": "a" * 32, "url": f"{origin}/pricing.html", "title": "Tarifs"}
    assert _beacon(web, "https://evil.example.com", visit).status_code == 403
    assert _beacon(web, origin, {**visit, "url": "https://evil.example.com/"}).status_code == 400
    assert _beacon(web, origin, {**visit, "v": "x"}).status_code == 400
    assert _beacon(web, origin, {**visit, "title": "\x00"}).status_code == 400
    assert _beacon(web, origin, {**visit, "form": {"email": "nope"}}).status_code == 400
    too_big = {**visit, "title": "t" * 5000}
    assert _beacon(web, origin, too_big).status_code == 400
    assert _anonymous_visits(web) == 0
    for headers in ({"DNT": "1"}, {"Sec-GPC": "1"}, {"User-Agent": "Googlebot/2.1"}):
        response = _beacon(web, origin, visit, **headers)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
    assert _anonymous_visits(web) == 0
    forged = {**visit, "ref": "eyJsIjoieCJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    assert _beacon(web, origin, forged).status_code == 204
    assert _anonymous_visits(web) == 1 and _visits(web) == []  # still anonymous
    codes = [_beacon(web, origin, {**visit, "v": "b" * 32}).status_code for _ in range(61)]
    assert codes.count(204) == 60 and codes[-1] == 429


def test_only_a_persons_click_to_a_listed_site_carries_the_reference(
    beaconing: tuple[Web, str],
) -> None:
    web, origin = beaconing
    [message] = web.sent_to("anne@example.com")
    click = next(u for u in web.links(message) if u.startswith(BASE_URL + "/t/c/"))
    path = click.removeprefix(BASE_URL)
    scanner = web.client.get(path, headers={"User-Agent": BROWSER_AGENT})  # on delivery
    assert scanner.headers["location"] == f"{origin}/welcome.html"
    web.move_clock(minutes=30)
    person = web.client.get(path, headers={"User-Agent": BROWSER_AGENT})
    location = person.headers["location"]
    assert location.startswith(f"{origin}/welcome.html?nurture_ref=")
    assert "anne" not in location.lower()
    again = web.client.get(path, headers={"User-Agent": BROWSER_AGENT})  # a repeat
    assert again.headers["location"] == f"{origin}/welcome.html"
