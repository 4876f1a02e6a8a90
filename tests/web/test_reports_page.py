"""The report in the web app: `/sales/reports` (and `/reports`) behind the sales login."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.store.models import Contact, Send
from nurture.web import inbox
from tests.web.sales_world import PASSWORD, SalesWorld, build, populate

BASE = "https://nurture.example.com"


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[SalesWorld]:
    w = build(tmp_path, sessions)
    with clock.using(w.clock):
        populate(w)  # Anne and Bob imported as leads, each sent lead/welcome
        handoff = w.push_to_sales()  # Anne: lead → mql → sql, a handoff opens
        w.move_clock(hours=3)
        inbox.act(w.engine, handoff.id, "accept", "Alice", now=clock.now())
        w.move_clock(hours=1)
        yield w


@pytest.fixture
def client(world: SalesWorld) -> Iterator[TestClient]:
    with TestClient(world.app, base_url=BASE, follow_redirects=False) as c:
        yield c


def login(client: TestClient) -> None:
    response = client.post(
        "/sales/login", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 303, response.text


def test_the_report_needs_the_sales_login(client: TestClient) -> None:
    response = client.get("/sales/reports?since=7d")
    assert response.status_code == 303
    assert response.headers["location"] == "/sales/login?next=/sales/reports%3Fsince%3D7d"
    short = client.get("/reports?since=7d")
    assert (short.status_code, short.headers["location"]) == (303, "/sales/reports?since=7d")


def test_the_report_page_shows_the_figures(client: TestClient) -> None:
    login(client)
    page = client.get("/sales/reports")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in text and "style=" not in text  # the CSP allows neither
    assert '<link rel="stylesheet" href="/sales/reports.css">' in text
    assert text.count("<svg") >= 2
    # Both leads entered `lead`; Anne went on to mql (and sql): 1 of 2. Each figure
    # says what it counts beside it: the bar's, then the share that went on.
    assert ">2 entered</text>" in text
    assert "↓ 1 of the 2 later reached mql (50.0 %)" in text
    assert "times in Europe/Paris" in text and " UTC" not in text
    # The one handoff, accepted after 3 hours.
    assert "<b>100.0 %</b><span>handoffs accepted (of decided)</span>" in text
    assert "<b>3 h</b><span>median time to accept</span>" in text
    assert "lead/welcome" in text and "lead-nurture" in text
    css = client.get("/sales/reports.css")
    assert css.status_code == 200 and ".report" in css.text


def test_a_bad_period_says_so(client: TestClient) -> None:
    login(client)
    page = client.get("/sales/reports", params={"since": "last tuesday"})
    assert page.status_code == 400
    assert "not &#39;last tuesday&#39;" in page.text or "last tuesday" in html.unescape(page.text)


def test_the_report_page_counts_a_scanners_clicks_apart(
    world: SalesWorld, client: TestClient
) -> None:
    """A gateway follows both links of Bob's welcome in the same second: those clicks
    are a machine's, beside the people's (none), not in the click rate."""
    with world.sessions() as session:
        [send_id] = session.scalars(
            select(Send.id)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Contact.email == "bob@example.com", Send.template == "lead/welcome")
        )
    for url in ("https://example.com/a", "https://example.com/b"):
        world.signal("email.clicked", "bob@example.com", send_id=send_id, url=url)
    login(client)
    text = html.unescape(client.get("/sales/reports").text)
    assert "<th>machine (opened / clicked)</th>" in text
    row = text[text.index("<td>lead/welcome") :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[4].startswith("0 ")  # clicked by people: none
    assert cells[5:7] == ["0 / 1", "0 / 0"]  # machine, repeat
