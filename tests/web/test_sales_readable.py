"""The sales inbox reads as people read: scores rounded as everywhere, times local."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from nurture.store.models import Handoff
from tests.web.sales_world import SalesWorld
from tests.web.test_sales_inbox import client, hid, logged_in, world

__all__ = ["client", "logged_in", "world"]  # the fixtures these tests use

ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
DECIMAL = re.compile(r"\d+[.,]\d+")
TAG = re.compile(r"<[^>]+>")


def test_no_inbox_page_shows_a_utc_time_or_an_unrounded_score(
    world: SalesWorld, logged_in: TestClient
) -> None:
    number = hid(world)
    with world.sessions.begin() as session:  # the score as decay leaves it (#16)
        handoff = session.get(Handoff, number)
        assert handoff is not None
        snapshot = dict(handoff.snapshot or {})
        snapshot["score"] = {
            **snapshot["score"],
            "total": 139.9999,
            "fit": 20.0,
            "engagement": 119.9999,
        }
        handoff.snapshot = snapshot
    pages = {
        path: html.unescape(TAG.sub(" ", logged_in.get(path).text))
        for path in ("/sales", f"/sales/handoffs/{number}")
    }
    for path, text in pages.items():
        assert not ISO_TIME.search(text), (path, ISO_TIME.search(text))
        assert not DECIMAL.search(text), (path, DECIMAL.search(text))
    listed, detail = pages.values()
    assert re.search(r"Anne Martin .* 140 ", listed, re.S)
    assert "Score au transfert : 140" in detail and "Profil 20 + engagement 120" in detail
    # Handed over Monday 11:30 in Paris: the SLA, local and in French, with the time left.
    assert "À accepter avant 24 nov. 11:30 (dans 1 jour)" in re.sub(r"\s+", " ", detail)
