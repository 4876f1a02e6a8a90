"""Sales accounts in the inbox: guess limits and lockout, one-time password links,
sessions ended on the server, and who may act on which handoff (issue #16)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.lifecycle import accounts, signin
from nurture.store.models import Handoff
from tests.web.sales_world import PASSWORD, SalesWorld, build, populate

BASE = "https://nurture.example.com"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[SalesWorld]:
    """Anne handed to Alice; accounts: Alice and Marc (sales), Léa (lead)."""
    w = build(tmp_path, sessions)
    with clock.using(w.clock):
        populate(w)
        w.push_to_sales()
        yield w


def _client(world: SalesWorld) -> TestClient:
    return TestClient(world.app, base_url=BASE, follow_redirects=False)


@pytest.fixture
def client(world: SalesWorld) -> Iterator[TestClient]:
    with _client(world) as c:
        yield c


def login(
    client: TestClient, email: str = "alice@example.com", password: str = PASSWORD
) -> httpx.Response:
    return client.post("/sales/login", data={"email": email, "password": password})


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return html.unescape(_CSRF.findall(page.text)[0])


def anne(world: SalesWorld) -> Handoff:
    handoff = world.handoff()
    assert handoff is not None
    return handoff


def _link(world: SalesWorld, email: str) -> str:
    """What `nurture users reset` prints: a one-time link (its token)."""
    with world.sessions.begin() as session:
        account = accounts.get(session, email)
        accounts.unlock(session, account.email)
        return accounts.issue_link(session, account, world.clock.now())


# --- guessing ----------------------------------------------------------------------------------


def test_300_wrong_passwords_get_5_checks_then_waits_and_the_right_one_waits_too(
    world: SalesWorld, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = signin.password_matches

    def counting(account: Any, password: str) -> bool:
        checked.append(password)
        return real(account, password)

    monkeypatch.setattr(signin, "password_matches", counting)
    answers = [login(client, password=f"guess-{n}").status_code for n in range(300)]
    assert answers[: signin.ACCOUNT_FREE] == [401] * signin.ACCOUNT_FREE
    assert set(answers[signin.ACCOUNT_FREE :]) == {429}
    assert len(checked) == signin.ACCOUNT_FREE  # the rest were refused unchecked
    right = login(client)
    assert right.status_code == 429 and "set-cookie" not in right.headers
    assert right.headers["retry-after"] == "1"
    assert "Trop de tentatives" in right.text
    world.move_clock(seconds=1)
    assert login(client).status_code == 303  # the wait is over, and it was the right one


def test_the_wait_doubles_then_the_account_locks_until_a_reset(
    world: SalesWorld, client: TestClient
) -> None:
    for failure in range(signin.LOCK_AFTER):
        world.move_clock(seconds=signin.delay(failure, signin.ACCOUNT_FREE).total_seconds())
        response = login(client, password="wrong")
        expected = 423 if failure == signin.LOCK_AFTER - 1 else 401
        assert response.status_code == expected, failure
    assert signin.delay(signin.ACCOUNT_FREE + 3, signin.ACCOUNT_FREE).total_seconds() == 8
    world.move_clock(days=3)
    locked = login(client)
    assert locked.status_code == 423 and "verrouillé" in locked.text
    # Other accounts are not locked with it.
    with _client(world) as other:
        assert login(other, email="marc@example.com").status_code == 303
    # The owner's way back: a reset link lifts the lockout and sets a new password.
    token = _link(world, "alice@example.com")
    assert login(client).status_code == 303  # unlocked by the reset, the old password holds
    client.cookies.clear()
    done = client.post(
        "/sales/password",
        data={"token": token, "password": "a brand new secret", "confirm": "a brand new secret"},
    )
    assert (done.status_code, done.headers["location"]) == (303, "/sales")
    assert login(client).status_code == 401
    assert login(client, password="a brand new secret").status_code == 303


def test_an_admin_unlock_lifts_the_lockout_and_keeps_the_password(
    world: SalesWorld, client: TestClient
) -> None:
    for failure in range(signin.LOCK_AFTER):
        world.move_clock(seconds=signin.delay(failure, signin.ACCOUNT_FREE).total_seconds())
        login(client, password="wrong")
    assert login(client).status_code == 423
    with world.sessions.begin() as session:
        accounts.unlock(session, "alice@example.com")
    world.move_clock(seconds=1)  # the client address's own wait (its 20th failure)
    assert login(client).status_code == 303


def test_unknown_addresses_are_counted_like_real_ones(
    world: SalesWorld, client: TestClient
) -> None:
    """The answers do not tell which accounts exist."""
    for email in ("alice@example.com", "nobody@example.com"):
        answers = [login(client, email, "wrong").status_code for _ in range(7)]
        assert answers == [401] * 5 + [429] * 2, email
        world.move_clock(hours=1, seconds=1)


def test_one_client_address_guessing_many_accounts_is_slowed(
    world: SalesWorld, client: TestClient
) -> None:
    answers = [
        login(client, f"user{n}@example.com", "wrong").status_code
        for n in range(signin.ADDRESS_FREE + 5)
    ]
    assert answers[: signin.ADDRESS_FREE] == [401] * signin.ADDRESS_FREE
    assert set(answers[signin.ADDRESS_FREE :]) == {429}
    assert login(client).status_code == 429  # from this address, even the right one waits
    world.move_clock(hours=1, seconds=1)  # an address is never locked: its count restarts
    assert login(client).status_code == 303


# --- one-time links ------------------------------------------------------------------------------


def test_a_password_link_works_once_and_ends_every_session(
    world: SalesWorld, client: TestClient
) -> None:
    assert login(client).status_code == 303
    token = _link(world, "alice@example.com")
    with _client(world) as browser:
        page = browser.get(f"/sales/password?token={token}")
        assert page.status_code == 200 and "alice@example.com" in page.text
        assert (
            browser.get(f"/sales/password?token={token}").status_code == 200
        )  # opening uses nothing
        short = browser.post(
            "/sales/password", data={"token": token, "password": "short", "confirm": "short"}
        )
        assert short.status_code == 422 and "au moins 10 caractères" in short.text
        differ = browser.post(
            "/sales/password",
            data={"token": token, "password": "one long secret", "confirm": "another one"},
        )
        assert differ.status_code == 422 and "diffèrent" in differ.text
        data = {"token": token, "password": "one long secret", "confirm": "one long secret"}
        done = browser.post("/sales/password", data=data)
        assert done.status_code == 303
        assert browser.get("/sales").status_code == 200  # signed in by setting it
        again = browser.post("/sales/password", data=data)
        assert again.status_code == 410 and "Ce lien n" in again.text
    assert client.get("/sales").status_code == 303  # the older session ended


def test_a_link_expires_and_a_newer_one_voids_it(world: SalesWorld, client: TestClient) -> None:
    first = _link(world, "alice@example.com")
    second = _link(world, "alice@example.com")
    assert client.get(f"/sales/password?token={first}").status_code == 410
    assert client.get(f"/sales/password?token={second}").status_code == 200
    world.move_clock(hours=24)
    assert client.get(f"/sales/password?token={second}").status_code == 410
    for bad in ("", "x", "x" * 500):
        assert client.get("/sales/password", params={"token": bad}).status_code == 410


def test_sign_in_forms_posted_from_another_site_are_refused(
    world: SalesWorld, client: TestClient
) -> None:
    cross = {"Sec-Fetch-Site": "cross-site"}
    response = client.post(
        "/sales/login", data={"email": "alice@example.com", "password": PASSWORD}, headers=cross
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers
    token = _link(world, "alice@example.com")
    data = {"token": token, "password": "one long secret", "confirm": "one long secret"}
    assert client.post("/sales/password", data=data, headers=cross).status_code == 403
    assert client.post("/sales/password", data=data).status_code == 303


def test_a_password_change_ends_the_other_sessions(world: SalesWorld, client: TestClient) -> None:
    assert login(client).status_code == 303
    with world.sessions.begin() as session:
        link = accounts.valid_link(session, _link(world, "alice@example.com"), world.clock.now())
        assert link is not None
        accounts.use_link(session, link, "changed elsewhere!", world.clock.now())
    assert client.get("/sales").status_code == 303


# --- who may act on what --------------------------------------------------------------------------


def test_a_rep_sees_and_acts_on_their_own_handoffs_only(
    world: SalesWorld, client: TestClient
) -> None:
    handoff = anne(world)
    path = f"/sales/handoffs/{handoff.id}"
    assert login(client, "marc@example.com").status_code == 303
    assert "anne@example.com" not in client.get("/sales").text
    assert "anne@example.com" not in client.get("/sales?owner=alice@example.com").text
    refused = client.get(path)
    assert refused.status_code == 403 and "Anne" not in refused.text
    token = csrf_of(client, "/sales")
    for action, data in (
        ("accept", {}),
        ("reject", {"reason": "pas pour moi"}),
        ("request", {"reason": "pas pour moi"}),
        ("reassign", {"to": "marc@example.com"}),
    ):
        response = client.post(f"{path}/{action}", data={"csrf": token, **data})
        assert response.status_code == 403, action
    now = anne(world)
    assert (now.status, now.owner, len(now.actions)) == ("open", "alice@example.com", 1)


def test_a_rep_asks_for_a_reassignment_and_a_lead_reassigns(
    world: SalesWorld, client: TestClient
) -> None:
    handoff = anne(world)
    path = f"/sales/handoffs/{handoff.id}"
    assert login(client).status_code == 303
    token = csrf_of(client, path)
    assert (
        client.post(f"{path}/reassign", data={"csrf": token, "to": "marc@example.com"}).status_code
        == 403
    )
    assert client.post(f"{path}/request", data={"csrf": token, "reason": ""}).status_code == 422
    asked = client.post(f"{path}/request", data={"csrf": token, "reason": "Secteur de Marc"})
    assert asked.headers["location"] == f"{path}?done=request"
    assert "Réattribution demandée" in client.get(path).text

    assert login(client, "lea@example.com").status_code == 303
    token = csrf_of(client, path)
    page = client.get(path).text
    assert '<option value="marc@example.com">' in page
    unknown = client.post(f"{path}/reassign", data={"csrf": token, "to": "eve@evil.example"})
    assert unknown.status_code == 422 and "compte actif" in unknown.text
    moved = client.post(f"{path}/reassign", data={"csrf": token, "to": "marc@example.com"})
    assert moved.headers["location"] == f"{path}?done=reassign"
    after = anne(world)
    assert after.owner == "marc@example.com" and after.status == "open"
    assert world.contact().owner == "marc@example.com"
    requested, reassigned = after.actions[-2:]
    assert (requested["action"], requested["by"], requested["reason"]) == (
        "reassignment_requested",
        "alice@example.com",
        "Secteur de Marc",
    )
    assert (reassigned["action"], reassigned["by"]) == ("reassigned", "lea@example.com")
    assert (reassigned["previous"], reassigned["to"]) == ("alice@example.com", "marc@example.com")
    text = client.get(path).text
    assert "Réattribué" in text and "par Léa Lambert" in text and "à Marc Leroy" in text
    # Alice no longer reaches it; Marc does.
    assert login(client).status_code == 303
    assert client.get(path).status_code == 403
    assert login(client, "marc@example.com").status_code == 303
    assert client.get(path).status_code == 200


def test_a_lead_acts_on_anyones_handoff_and_the_log_names_the_account(
    world: SalesWorld, client: TestClient
) -> None:
    path = f"/sales/handoffs/{anne(world).id}"
    assert login(client, "lea@example.com").status_code == 303
    token = csrf_of(client, path)
    assert client.post(f"{path}/accept", data={"csrf": token}).status_code == 303
    decided = anne(world)
    assert (decided.status, decided.decided_by) == ("accepted", "lea@example.com")
    assert decided.actions[-1]["by"] == "lea@example.com"


# --- an admin manages the accounts -------------------------------------------------------------


def test_only_an_admin_manages_accounts(world: SalesWorld, client: TestClient) -> None:
    assert client.get("/sales/accounts").status_code == 303  # not signed in
    assert login(client, "lea@example.com").status_code == 303
    token = csrf_of(client, "/sales")
    assert client.get("/sales/accounts").status_code == 403
    data = {"csrf": token, "email": "eve@example.com", "name": "Eve", "role": "admin"}
    assert client.post("/sales/accounts/add", data=data).status_code == 403
    assert 'href="/sales/accounts"' not in client.get("/sales").text
    with world.sessions() as session, pytest.raises(accounts.AccountError):
        accounts.get(session, "eve@example.com")


def test_an_admin_adds_resets_and_disables_accounts(world: SalesWorld, client: TestClient) -> None:
    world.add_account("ada@example.com", "Ada Admin", role="admin")
    assert login(client, "ada@example.com").status_code == 303
    assert 'href="/sales/accounts"' in client.get("/sales").text
    token = csrf_of(client, "/sales/accounts")
    added = client.post(
        "/sales/accounts/add",
        data={"csrf": token, "email": "Nina@Example.com", "name": "Nina", "role": "sales"},
    )
    assert added.status_code == 200 and "Compte créé" in added.text
    link = re.search(r'<code id="link">[^<]*/sales/password\?token=([\w-]+)</code>', added.text)
    assert link is not None
    row = re.search(r"nina@example.com</div></td>.*?</tr>", added.text, re.S)
    assert (
        row is not None and "sans mot de passe" in row.group(0) and "Europe/Paris" in row.group(0)
    )
    bad = client.post(
        "/sales/accounts/add",
        data={"csrf": token, "email": "nina@example.com", "name": "Nina", "role": "sales"},
    )
    assert bad.status_code == 422 and "already has an account" in bad.text
    forged = client.post(
        "/sales/accounts/disable", data={"csrf": "x", "email": "alice@example.com"}
    )
    assert forged.status_code == 403
    # Alice, signed in elsewhere, is disabled: her session ends at once.
    with _client(world) as alice:
        assert login(alice).status_code == 303
        done = client.post(
            "/sales/accounts/disable", data={"csrf": token, "email": "alice@example.com"}
        )
        assert done.status_code == 200 and "désactivé" in done.text
        assert alice.get("/sales").status_code == 303
        assert login(alice).status_code == 401
        client.post("/sales/accounts/enable", data={"csrf": token, "email": "alice@example.com"})
        reset = client.post(
            "/sales/accounts/reset", data={"csrf": token, "email": "alice@example.com"}
        )
        found = re.search(r"/sales/password\?token=([\w-]+)", reset.text)
        assert found is not None
        assert alice.get(f"/sales/password?token={found.group(1)}").status_code == 200
    own = client.post("/sales/accounts/disable", data={"csrf": token, "email": "ada@example.com"})
    assert own.status_code == 422 and "your own account" in own.text


def test_times_are_shown_in_the_accounts_timezone(world: SalesWorld, client: TestClient) -> None:
    """Anne's SLA ends 24 Nov 10:30 UTC: 11:30 in Paris, 05:30 in New York."""
    path = f"/sales/handoffs/{anne(world).id}"
    assert login(client, "lea@example.com").status_code == 303
    paris = client.get(path).text
    assert "11:30" in paris and "05:30" not in paris
    with world.sessions.begin() as session:
        accounts.update(session, "lea@example.com", timezone="America/New_York")
    new_york = client.get(path).text
    assert "05:30" in new_york and "America/New_York" in new_york
