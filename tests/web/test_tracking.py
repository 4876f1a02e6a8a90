"""Click and open tracking, view in browser: records, and no open redirect."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import delete

from nurture.store.models import Contact
from nurture.tokens import Signer
from nurture.web.tracking import PIXEL
from tests.web.conftest import BASE_URL, SIGNING_KEY, Web, anne_welcome

TARGET = "https://example.com/welcome?utm_source=nurture&x=1"


def _token(path: str) -> str:
    return path.rsplit("/", 1)[1].removesuffix(".gif")


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


def test_a_click_is_recorded_then_redirects_to_the_signed_url(web: Web) -> None:
    message = anne_welcome(web)
    send = web.send_of(message)
    path = web.link(message, "/t/c/")
    web.move_clock(minutes=30)  # read half an hour after delivery
    response = web.client.get(path)
    assert response.status_code == 302
    assert response.headers["location"] == TARGET
    assert response.headers["cache-control"] == "no-store"
    [event] = web.events("email.clicked")
    assert event.contact_id == send.contact_id
    assert event.source == "tracking"
    assert event.event_id.startswith(f"click:{send.id}:")
    assert event.properties == {
        "send_id": send.id,
        "workflow": "lead-nurture",
        "step": send.step,
        "template": "lead/welcome",
        "url": TARGET,
    }
    assert event.traffic == "human"
    assert web.client.get(path).headers["location"] == TARGET
    clicks = web.events("email.clicked")
    assert len({e.event_id for e in clicks}) == 2  # one event per click, each kept
    assert [e.traffic for e in clicks] == ["human", "repeat"]
    assert web.contact("anne@example.com").engagement_score == 10  # the first one scored


@pytest.mark.parametrize(
    "query",
    [
        "?url=https://evil.example.com",
        "?next=https://evil.example.com",
        "?u=https://evil.example.com&redirect=//evil.example.com",
    ],
)
def test_query_parameters_never_choose_the_target(web: Web, query: str) -> None:
    path = web.link(anne_welcome(web), "/t/c/")
    response = web.client.get(path + query)
    assert (response.status_code, response.headers["location"]) == (302, TARGET)


def _forgeries(web: Web) -> list[str]:
    message = anne_welcome(web)
    send_id = web.send_of(message).id
    click = _token(web.link(message, "/t/c/"))
    body, mac = click.split(".")
    evil = {"s": send_id, "u": "https://evil.example.com/"}
    altered = base64.urlsafe_b64encode(json.dumps(evil).encode()).decode().rstrip("=")
    ours = Signer(SIGNING_KEY)
    return [
        f"{altered}.{mac}",  # payload changed, MAC kept
        f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # MAC changed
        click[:-4],  # truncated
        body,  # no MAC at all
        f"{body}.",
        f".{mac}",
        _token(web.link(message, "/t/o/")),  # an open-pixel token
        _token(web.link(message, "/u/")),  # an unsubscribe token
        _token(web.link(message, "/v/")),  # a view-in-browser token
        Signer("another-key-" * 3).sign("click", evil),  # signed with another key
        ours.sign("open", evil),  # our key, wrong purpose
        ours.sign("click", {"s": send_id, "u": "javascript:alert(document.domain)"}),
        ours.sign("click", {"s": send_id, "u": "//evil.example.com/"}),
        ours.sign("click", {"s": send_id, "u": "https:evil.example.com"}),
        ours.sign("click", {"s": send_id, "u": "data:text/html,<script>1</script>"}),
        ours.sign("click", {"s": send_id, "u": "https://ok.example.com/\r\nSet-Cookie: x=1"}),
        ours.sign("click", {"s": send_id}),
        ours.sign("click", {"s": str(send_id), "u": TARGET}),
        ours.sign("click", ["not", "an", "object"]),  # type: ignore[arg-type]
        "%2e%2e",
        "a" * 5000,
    ]


def test_forged_altered_and_foreign_tokens_get_a_404_page_and_no_redirect(web: Web) -> None:
    for token in _forgeries(web):
        response = web.client.get(f"/t/c/{token}?url=https://evil.example.com")
        assert response.status_code == 404, token
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert "Lien invalide" in response.text and "Invalid link" in response.text
    assert web.events() == []


def test_an_erased_contact_still_gets_redirected_but_nothing_is_recorded(web: Web) -> None:
    path = web.link(anne_welcome(web), "/t/c/")
    pixel = web.link(anne_welcome(web), "/t/o/")
    with web.sessions.begin() as session:
        session.execute(delete(Contact).where(Contact.email == "anne@example.com"))
    assert web.client.get(path).headers["location"] == TARGET
    assert web.client.get(pixel).content == PIXEL
    assert web.events() == []


def test_a_recording_failure_does_not_break_the_redirect(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(web.app.state.nurture.ingestor, "ingest_batch", broken)
    message = anne_welcome(web)
    assert web.client.get(web.link(message, "/t/c/")).headers["location"] == TARGET
    assert web.client.get(web.link(message, "/t/o/")).content == PIXEL


def test_the_open_pixel_records_an_open_and_is_never_cached(web: Web) -> None:
    message = anne_welcome(web)
    send = web.send_of(message)
    path = web.link(message, "/t/o/")
    assert path.endswith(".gif")
    response = web.client.get(path, headers={"User-Agent": "Mail/1.0"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == PIXEL
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"
    [event] = web.events("email.opened")
    assert event.properties == {
        "send_id": send.id,
        "workflow": "lead-nurture",
        "step": send.step,
        "template": "lead/welcome",
    }
    assert event.raw is not None and event.raw["user_agent"] == "Mail/1.0"


def test_a_bad_pixel_token_still_gets_the_gif_but_records_nothing(web: Web) -> None:
    click = _token(web.link(anne_welcome(web), "/t/c/"))
    for token in ("garbage", click, click[:-2]):
        response = web.client.get(f"/t/o/{token}.gif")
        assert (response.status_code, response.content) == (200, PIXEL)
    assert web.events() == []


def test_view_in_browser_renders_the_email_for_its_contact(web: Web) -> None:
    message = anne_welcome(web)
    response = web.client.get(web.link(message, "/v/"))
    assert response.status_code == 200
    assert "Bonjour Anne" in response.text
    assert "/t/c/" in response.text  # links still tracked
    assert "/t/o/" not in response.text  # viewing in a browser is not an email open
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert web.client.get(web.link(message, "/t/c/").replace("/t/c/", "/v/")).status_code == 404
    with web.sessions.begin() as session:
        session.execute(delete(Contact).where(Contact.email == "anne@example.com"))
    assert web.client.get(web.link(message, "/v/")).status_code == 404


def test_a_tracked_link_older_than_a_year_still_leads_there_but_records_nothing(
    web: Web,
) -> None:
    message = anne_welcome(web)
    click = web.link(message, "/t/c/")
    pixel = next(u for u in web.links(message) if "/t/o/" in u).removeprefix(BASE_URL)
    web.move_clock(days=366)
    response = web.client.get(click)
    assert (response.status_code, response.headers["location"]) == (302, TARGET)
    assert web.client.get(pixel).status_code == 200
    assert web.events("email.clicked") == [] and web.events("email.opened") == []
    unsubscribe = web.link(message, "/u/")  # never expires
    assert web.client.post(unsubscribe).status_code == 200
    assert len(web.events("email.unsubscribed")) == 1
