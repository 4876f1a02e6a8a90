"""The sales inbox end to end in headless Chromium: sign in, open the list, open a
handoff, reject it with a reason, see the contact recycled; reps who see and act on
their own handoffs only, a lead who reassigns, a cookie that dies at logout.

Playwright drives Debian's chromium (`/usr/bin/chromium`, installed by
`./scripts/test` when missing); nothing is downloaded (no `playwright
install`). The app is served by uvicorn in a thread over the real engine on
SQLite, under the test's virtual clock. Without chromium or playwright the
test is skipped, except under CI (``CI`` set), where it fails instead.
Screenshots go to the test's tmp folder, or to ``NURTURE_SCREENSHOT_DIR``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.web.server import bound_port, serve_in_thread
from tests.web.sales_world import PASSWORD, SalesWorld, build, populate

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
    page.fill("#email", "alice@example.com")
    page.fill("#password", PASSWORD)
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
    for expected in ("Anne Martin", "Atelier Martin", "120", "Chaud", "Alice Martin"):
        assert expected in anne_text, expected
    assert anne.locator("td[title='alice@example.com']").count() == 1  # the owner
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
    assert last.details["by"] == "alice@example.com"
    decided = world.handoff("anne@example.com")
    assert decided is not None and decided.status == "rejected"
    assert decided.actions[-1]["action"] == "rejected"
    assert decided.actions[-1]["by"] == "alice@example.com"
    assert decided.actions[-1]["reason"] == "Pas de budget avant le T3 — à relancer en avril"

    # The rejected tab lists it, with the reason.
    page.click("main a[href='/sales?status=rejected']")  # the way back to its list
    page.wait_for_url(f"{base}/sales?status=rejected")
    rejected = page.locator("table.list tbody tr")
    assert rejected.count() == 1
    assert "Pas de budget avant le T3" in rejected.inner_text()
    _shot(page, tmp_path, "sales-rejected-tab")


def _sign_in(page: Any, base: str, email: str, next_: str = "/sales") -> None:
    page.goto(f"{base}{next_}")
    page.wait_for_url(re.compile(r".*/sales/login\?next=.*"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_}")


def test_reps_act_on_their_own_handoffs_and_a_lead_reassigns(
    browser: Any, served: tuple[SalesWorld, str], tmp_path: Path
) -> None:
    world, base = served
    with clock.using(world.clock):
        world.import_rows(
            "email,first_name,last_name,company,stage\nchloe@example.com,Chloé,Petit,Petit SA,lead\n"
        )
        world.run()
        chloe = world.push_to_sales("chloe@example.com")
        with world.sessions.begin() as session:  # Chloé is Marc's
            world.engine.handoffs.reassign(
                session, chloe.id, "marc@example.com", "lea@example.com", world.clock.now()
            )
    anne, bob = world.handoff("anne@example.com"), world.handoff("bob@example.com")
    assert anne is not None and bob is not None

    # Alice signs in and sees her two handoffs, not Marc's.
    alice = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = alice.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base, "alice@example.com")
    assert page.inner_text("header .who strong") == "Alice Martin"
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 2
    listed = page.inner_text("table.list")
    assert "anne@example.com" in listed and "bob@example.com" in listed
    assert "chloe@example.com" not in listed
    assert page.locator("select#owner").count() == 0  # no filter to see the others'
    page.goto(f"{base}/sales/handoffs/{chloe.id}")
    assert "ne vous est pas attribué" in page.inner_text("main")
    assert page.locator("button.accept").count() == 0
    _shot(page, tmp_path, "rep-not-yours")

    # She accepts Anne's.
    page.goto(f"{base}/sales/handoffs/{anne.id}")
    page.click("button.accept")
    page.wait_for_url(f"{base}/sales/handoffs/{anne.id}?done=accept")
    assert page.inner_text("#status") == "Accepté"
    assert "Accepté par Alice Martin" in page.inner_text("#actions")
    accepted = world.handoff("anne@example.com")
    assert accepted is not None and accepted.decided_by == "alice@example.com"

    # She signs out; her old cookie, put back, opens nothing.
    [cookie] = [c for c in alice.cookies() if c["name"] == "nurture_sales"]
    page.click("header .who button")
    page.wait_for_url(f"{base}/sales/login")
    replay = browser.new_context()
    replay.add_cookies([cookie])
    stale = replay.new_page()
    stale.goto(f"{base}/sales")
    assert stale.url == f"{base}/sales/login?next=/sales"
    replay.close()
    alice.close()

    # Marc cannot act on Bob's handoff (Alice's): neither the page nor a forged post.
    marc = browser.new_context()
    page = marc.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base, "marc@example.com")
    assert "bob@example.com" not in page.inner_text("main")
    csrf = page.get_attribute("form.who input[name=csrf]", "value")
    page.goto(f"{base}/sales/handoffs/{bob.id}")
    assert "ne vous est pas attribué" in page.inner_text("main")
    forced = page.request.post(
        f"{base}/sales/handoffs/{bob.id}/accept", form={"csrf": csrf}, max_redirects=0
    )
    assert forced.status == 403
    still = world.handoff("bob@example.com")
    assert still is not None and (still.status, still.owner) == ("open", "alice@example.com")

    # Léa (lead) sees everyone's and gives Bob's handoff to Marc.
    lea = browser.new_context()
    lead_page = lea.new_page()
    lead_page.set_default_timeout(15_000)
    _sign_in(lead_page, base, "lea@example.com")
    everyone = lead_page.inner_text("table.list")
    assert "bob@example.com" in everyone and "chloe@example.com" in everyone
    lead_page.goto(f"{base}/sales/handoffs/{bob.id}")
    lead_page.select_option("#to", "marc@example.com")
    lead_page.click("form.reassign button")
    lead_page.wait_for_url(f"{base}/sales/handoffs/{bob.id}?done=reassign")
    assert lead_page.inner_text("#owner") == "Marc Leroy"
    assert "Réattribué par Léa Lambert" in lead_page.inner_text("#actions")
    _shot(lead_page, tmp_path, "lead-reassigned")
    lea.close()

    # Now Marc has it, and can act on it.
    page.goto(f"{base}/sales/handoffs/{bob.id}")
    assert page.locator("button.accept").count() == 1
    page.click("button.accept")
    page.wait_for_url(f"{base}/sales/handoffs/{bob.id}?done=accept")
    decided = world.handoff("bob@example.com")
    assert decided is not None and (decided.owner, decided.decided_by) == (
        "marc@example.com",
        "marc@example.com",
    )
    marc.close()
