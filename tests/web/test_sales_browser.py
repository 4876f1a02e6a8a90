"""The sales inbox end to end in headless Chromium: log in, open the list, open a
handoff, reject it with a reason, see the contact recycled.

Playwright drives Debian's chromium (`/usr/bin/chromium`, installed by
`./scripts/test` when missing); nothing is downloaded (no `playwright
install`). The app is served by uvicorn in a thread over the real engine on
SQLite, under the test's virtual clock. Without chromium or playwright the
test is skipped, except under CI (``CI`` set), where it fails instead.
Screenshots go to the test's tmp folder, or to ``NURTURE_SCREENSHOT_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.web.server import bound_port, serve_in_thread
from tests.web.sales_world import API_KEY, SalesWorld, build, populate

CHROMIUM = os.environ.get("NURTURE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[test]'"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no chromium at {CHROMIUM}: "
            "apt-get install -y --no-install-recommends chromium (./scripts/test does)"
        )
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    problem = _unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run under CI, but {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def served(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[tuple[SalesWorld, str]]:
    """Bob handed over 25 h ago (overdue), Anne 5 h ago; the app on a free local port."""
    world = build(tmp_path, sessions, base_url="http://127.0.0.1")
    with clock.using(world.clock):
        populate(world)
        world.push_to_sales("bob@example.com")
        world.move_clock(hours=20)
        world.push_to_sales("anne@example.com")
        world.move_clock(hours=5)
        server, thread = serve_in_thread(world.app, "127.0.0.1", 0)
        try:
            yield world, f"http://127.0.0.1:{bound_port(server)}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("NURTURE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_reject_a_handoff_in_the_browser_and_see_the_contact_recycled(
    browser: Any, served: tuple[SalesWorld, str], tmp_path: Path
) -> None:
    world, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page.set_default_timeout(15_000)

    # Not logged in: the list sends us to the login form, which sends us back.
    page.goto(f"{base}/sales")
    assert page.url == f"{base}/sales/login?next=/sales"
    _shot(page, tmp_path, "sales-login")
    page.fill("#by", "Alice Martin")
    page.fill("#api_key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/sales")

    # The list: both open handoffs, Bob's overdue and flagged, Anne's not.
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 2
    bob = rows.filter(has_text="bob@example.com")
    anne = rows.filter(has_text="anne@example.com")
    assert "overdue" in (bob.get_attribute("class") or "")
    assert "en retard" in bob.inner_text()
    assert "overdue" not in (anne.get_attribute("class") or "")
    anne_text = anne.inner_text()
    for expected in ("Anne Martin", "Atelier Martin", "120", "Chaud", "alice@example.com"):
        assert expected in anne_text, expected
    assert "Reste 19 h" in anne_text and "il y a 5 h" in anne_text
    assert "1 en retard" in page.locator("nav.tabs").inner_text()
    _shot(page, tmp_path, "sales-inbox")

    # Open Anne's handoff: what sales was handed.
    anne.locator("a.contact").click()
    handoff = world.handoff("anne@example.com")
    assert handoff is not None
    page.wait_for_url(f"{base}/sales/handoffs/{handoff.id}")
    assert page.inner_text("h1") == "Anne Martin"
    body = page.inner_text("main")
    for expected in (
        "Étude de cas Batipro",
        "Score au transfert : 120",
        "Bienvenue",
        "demo.requested",
    ):
        assert expected in body, expected
    _shot(page, tmp_path, "sales-handoff-open")

    # Reject it with a reason.
    page.fill("#reason-input", "Pas de budget avant le T3 — à relancer en avril")
    page.click("button.reject")
    page.wait_for_url(f"{base}/sales/handoffs/{handoff.id}?done=reject")
    assert page.inner_text("#status") == "Renvoyé en nurturing"
    assert page.inner_text("#reason") == "Pas de budget avant le T3 — à relancer en avril"
    assert page.inner_text("#stage") == "lead"
    assert "recycle" in page.inner_text("#workflows")
    history = page.inner_text("#stage-history")
    assert "handoff.rejected" in history and "par Alice Martin" in history
    actions = page.inner_text("#actions")
    assert "Renvoyé en nurturing par Alice Martin" in actions
    assert page.locator("button", has_text="Rouvrir le transfert").count() == 1
    _shot(page, tmp_path, "sales-handoff-rejected")

    # In the database: recycled as on_reject says, and traced.
    anne_now = world.contact("anne@example.com")
    assert anne_now.stage == "lead"
    assert anne_now.score == pytest.approx(60.0)
    assert world.enrollments("anne@example.com")["recycle"] == "active"
    last = world.history("anne@example.com")[-1]
    assert (last.from_stage, last.to_stage, last.cause) == ("sql", "lead", "handoff.rejected")
    assert last.details["reason"] == "Pas de budget avant le T3 — à relancer en avril"
    assert last.details["by"] == "Alice Martin"
    decided = world.handoff("anne@example.com")
    assert decided is not None and decided.status == "rejected"
    assert decided.actions[-1]["action"] == "rejected"
    assert decided.actions[-1]["by"] == "Alice Martin"
    assert decided.actions[-1]["reason"] == "Pas de budget avant le T3 — à relancer en avril"

    # The rejected tab lists it, with the reason.
    page.click("main a[href='/sales?status=rejected']")  # the way back to its list
    page.wait_for_url(f"{base}/sales?status=rejected")
    rejected = page.locator("table.list tbody tr")
    assert rejected.count() == 1
    assert "Pas de budget avant le T3" in rejected.inner_text()
    _shot(page, tmp_path, "sales-rejected-tab")
