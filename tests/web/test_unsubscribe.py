"""Unsubscribe: a bilingual confirmation page, and RFC 8058 one-click POST."""

from __future__ import annotations

from datetime import timedelta

from tests.web.conftest import START, Web, anne_welcome


def test_the_page_asks_in_french_and_english_and_changes_nothing(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    response = web.client.get(path)
    assert response.status_code == 200
    page = response.text
    assert 'lang="fr"' in page and 'lang="en"' in page
    assert "Se désinscrire" in page and "Me désinscrire" in page
    assert "Unsubscribe" in page and "Unsubscribe me" in page
    assert f'<form method="post" action="{path}">' in page
    assert "anne@example.com" not in page  # a forwarded link leaks no address
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    assert web.contact("anne@example.com").consent_status == "unknown"
    assert web.events() == []


def test_one_click_unsubscribe_stops_further_email(web: Web) -> None:
    message = anne_welcome(web)
    send = web.send_of(message)
    unsubscribe = message.parsed()["List-Unsubscribe"].split(",")[0][1:-1]
    path = unsubscribe.removeprefix("https://nurture.example.com")
    assert path == web.link(message, "/u/")
    response = web.client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "Vous êtes désinscrit(e)" in response.text and "You are unsubscribed" in response.text
    assert "location" not in response.headers and "set-cookie" not in response.headers
    [event] = web.events("email.unsubscribed")
    assert event.event_id == f"unsubscribe:{send.id}"
    assert event.properties["template"] == "lead/welcome"
    assert web.contact("anne@example.com").consent_status == "withdrawn"

    web.at(START + timedelta(days=2, hours=1))
    web.tick()
    assert [m.subject for m in web.sent_to("anne@example.com")] == ["Bienvenue pour Atelier"]
    assert [m.subject for m in web.sent_to("bob@example.com")][-1] == "Le guide pour Batipro"
    explained = web.client.get("/v1/contacts/anne@example.com", headers=web.auth).json()
    assert explained["not_emailed_because"] == "unsubscribed"


def test_unsubscribing_twice_or_without_a_body_records_once(web: Web) -> None:
    path = web.link(anne_welcome(web), "/u/")
    assert web.client.post(path).status_code == 200
    assert web.client.post(path).status_code == 200
    assert len(web.events("email.unsubscribed")) == 1


def test_a_bad_unsubscribe_token_is_a_404_page(web: Web) -> None:
    message = anne_welcome(web)
    path = web.link(message, "/u/")
    click = web.link(message, "/t/c/").rsplit("/", 1)[1]
    for bad in (path[:-3], f"/u/{click}", "/u/nope"):
        assert web.client.get(bad).status_code == 404
        response = web.client.post(bad)
        assert response.status_code == 404
        assert "Lien invalide" in response.text
    assert web.events() == []
    assert web.contact("anne@example.com").consent_status == "unknown"
