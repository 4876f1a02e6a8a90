"""The sales inbox `/sales`: sign-in, sessions, CSRF, ownership, the list and the detail page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.tokens import Signer
from tests.web.sales_world import API_KEY, PASSWORD, SIGNING_KEY, SalesWorld, build, populate

BASE = "https://nurture.example.com"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[SalesWorld]:
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
    client: TestClient,
    email: str = "alice@example.com",
    password: str = PASSWORD,
    **extra: str,
) -> httpx.Response:
    return client.post("/sales/login", data={"email": email, "password": password, **extra})


@pytest.fixture
def logged_in(client: TestClient) -> TestClient:
    response = login(client)
    assert response.status_code == 303, response.text
    return client


def hid(world: SalesWorld) -> int:
    handoff = world.handoff()
    assert handoff is not None
    return handoff.id


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return html.unescape(_CSRF.findall(page.text)[0])


# --- not logged in -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "next_"),
    [
        ("/sales", "/sales"),
        ("/sales?status=rejected", "/sales%3Fstatus%3Drejected"),
        ("/sales/handoffs/1", "/sales/handoffs/1"),
    ],
)
def test_pages_send_strangers_to_the_login_page(client: TestClient, path: str, next_: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/sales/login?next={next_}"


def test_an_action_without_a_session_does_nothing(world: SalesWorld, client: TestClient) -> None:
    response = client.post(f"/sales/handoffs/{hid(world)}/accept", data={"csrf": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/sales/login?next=/sales/handoffs/{hid(world)}"
    assert world.handoff().status == "open"  # type: ignore[union-attr]


def test_the_login_page_is_a_form(client: TestClient) -> None:
    page = client.get("/sales/login?next=/sales/handoffs/1")
    assert page.status_code == 200
    assert 'name="email" type="email"' in page.text
    assert 'name="password" type="password"' in page.text
    assert "api_key" not in page.text
    assert 'name="next" value="/sales/handoffs/1"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'


# --- login ----------------------------------------------------------------------------------


def test_a_good_login_sets_a_locked_down_session_cookie(client: TestClient) -> None:
    response = login(client, next="/sales/handoffs/1")
    assert response.status_code == 303
    assert response.headers["location"] == "/sales/handoffs/1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("nurture_sales=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/sales", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower(), cookie
    assert PASSWORD not in cookie and "alice" not in cookie
    assert client.get("/sales").status_code == 200
    # Logged in, the login page goes straight on.
    again = client.get("/sales/login?next=/sales?status=accepted")
    assert (again.status_code, again.headers["location"]) == (303, "/sales?status=accepted")


def test_no_secure_flag_over_plain_http(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    world = build(tmp_path, sessions, base_url="http://127.0.0.1:8000")
    with clock.using(world.clock), _client(world) as client:
        world.add_account("alice@example.com", "Alice Martin")
        cookie = login(client).headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" not in cookie


@pytest.mark.parametrize(
    ("email", "password", "status", "message"),
    [
        ("alice@example.com", "wrong password", 401, "Adresse ou mot de passe incorrect"),
        ("alice@example.com", PASSWORD[:-1], 401, "Adresse ou mot de passe incorrect"),
        ("alice@example.com", PASSWORD.upper(), 401, "Adresse ou mot de passe incorrect"),
        ("nobody@example.com", PASSWORD, 401, "Adresse ou mot de passe incorrect"),
        ("alice@example.com", "", 422, "Indiquez votre adresse et votre mot de passe"),
        ("", PASSWORD, 422, "Indiquez votre adresse et votre mot de passe"),
    ],
)
def test_a_bad_login_says_why_and_opens_nothing(
    client: TestClient, email: str, password: str, status: int, message: str
) -> None:
    response = login(client, email=email, password=password)
    assert response.status_code == status
    assert message in response.text
    assert "set-cookie" not in response.headers
    assert not password or password not in response.text
    assert client.get("/sales").status_code == 303


def test_an_api_key_never_opens_the_inbox(client: TestClient) -> None:
    """API keys are for machines: not as a password, not as a header, not as a cookie."""
    for email in ("alice@example.com", "api", ""):
        response = client.post(
            "/sales/login", data={"email": email, "password": API_KEY, "api_key": API_KEY}
        )
        assert response.status_code in (401, 422), email
        assert "set-cookie" not in response.headers
    for headers in ({"Authorization": f"Bearer {API_KEY}"}, {"X-API-Key": API_KEY}):
        page = client.get("/sales", headers=headers)
        assert (page.status_code, page.headers["location"]) == (303, "/sales/login?next=/sales")
    client.cookies.set("nurture_sales", API_KEY, domain="nurture.example.com", path="/sales")
    assert client.get("/sales").status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/sales",
        "/\\evil.example.com",
        "\\\\evil.example.com",
        "javascript:alert(1)",
        "/sales@evil.example.com",
        "/salesforce",
        "/sales/../v1/handoffs",
        "/sales/login",
        "/v1/handoffs",
        "/sales\r\nSet-Cookie: x=1",
        "http:/sales",
        "",
    ],
)
def test_login_never_redirects_off_the_inbox(client: TestClient, target: str) -> None:
    response = login(client, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/sales"
    page = client.get("/sales/login", params={"next": target})
    assert page.status_code == 303 and page.headers["location"] == "/sales"


def test_a_forged_or_stale_session_is_no_session(world: SalesWorld, client: TestClient) -> None:
    signer = Signer(SIGNING_KEY)
    forged = signer.sign("sales-session", {"sid": "x", "by": "Mallory", "exp": 2**40, "k": "0"})
    other_purpose = signer.sign("click", {"sid": "x", "by": "Mallory", "exp": 2**40})
    for value in (forged, other_purpose, "garbage", "a.b", "x" * 5000):
        client.cookies.set("nurture_sales", value, domain="nurture.example.com", path="/sales")
        assert client.get("/sales").status_code == 303, value
    client.cookies.clear()
    assert login(client).status_code == 303
    for _ in range(5):  # in use: the idle expiry keeps moving
        world.move_clock(hours=2)
        assert client.get("/sales").status_code == 200
    world.move_clock(hours=2)  # 12 h after signing in: the absolute expiry
    assert client.get("/sales").status_code == 303


def test_an_idle_session_ends(world: SalesWorld, client: TestClient) -> None:
    assert login(client).status_code == 303
    world.move_clock(hours=3, minutes=59)
    assert client.get("/sales").status_code == 200
    world.move_clock(hours=4)
    assert client.get("/sales").status_code == 303


def test_disabling_the_account_ends_its_sessions(world: SalesWorld, client: TestClient) -> None:
    from nurture.lifecycle import accounts

    assert login(client).status_code == 303
    with world.sessions.begin() as session:
        accounts.disable(session, "alice@example.com", world.clock.now())
    assert client.get("/sales").status_code == 303
    assert login(client).status_code == 401
    with world.sessions.begin() as session:
        accounts.enable(session, "alice@example.com")
    assert login(client).status_code == 303


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_actions_without_the_csrf_token_are_refused(
    world: SalesWorld, logged_in: TestClient, action: str
) -> None:
    path = f"/sales/handoffs/{hid(world)}/{action}"
    real = csrf_of(logged_in, f"/sales/handoffs/{hid(world)}")
    # A token of another session (another login) is not this session's.
    with _client(world) as other:
        assert login(other, email="lea@example.com").status_code == 303
        foreign = csrf_of(other, f"/sales/handoffs/{hid(world)}")
    assert foreign != real
    session_signer = Signer(SIGNING_KEY)
    for token in (None, "", "nope", foreign, real + "x", session_signer.sign("sales-csrf", {})):
        data = {"reason": "pas prêt"} | ({"csrf": token} if token is not None else {})
        response = logged_in.post(path, data=data)
        assert response.status_code == 403, token
        assert "Requête refusée" in response.text
    assert world.handoff().status == "open"  # type: ignore[union-attr]
    assert world.contact().stage == "sql"


def test_logout_needs_the_token_then_ends_the_session(
    world: SalesWorld, logged_in: TestClient
) -> None:
    assert logged_in.post("/sales/logout", data={"csrf": "nope"}).status_code == 403
    assert logged_in.get("/sales").status_code == 200
    cookie = logged_in.cookies["nurture_sales"]
    token = csrf_of(logged_in, f"/sales/handoffs/{hid(world)}")
    response = logged_in.post("/sales/logout", data={"csrf": token})
    assert (response.status_code, response.headers["location"]) == (303, "/sales/login")
    assert 'nurture_sales=""' in response.headers["set-cookie"]
    assert logged_in.get("/sales").status_code == 303
    # The old cookie and CSRF token, replayed (issue #16: they still worked for 12 h).
    logged_in.cookies.set("nurture_sales", cookie, domain="nurture.example.com", path="/sales")
    assert logged_in.get("/sales").status_code == 303
    replay = logged_in.post(f"/sales/handoffs/{hid(world)}/accept", data={"csrf": token})
    assert replay.status_code == 303 and replay.headers["location"].startswith("/sales/login")
    assert world.handoff().status == "open"  # type: ignore[union-attr]


def test_forms_must_be_forms(world: SalesWorld, logged_in: TestClient) -> None:
    token = csrf_of(logged_in, "/sales")
    path = f"/sales/handoffs/{hid(world)}/accept"
    response = logged_in.post(path, json={"csrf": token})
    assert response.status_code == 415
    big = logged_in.post(path, data={"csrf": token, "reason": "x" * 70_000})
    assert big.status_code == 413
    assert world.handoff().status == "open"  # type: ignore[union-attr]


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_score_temperature_owner_and_age(
    world: SalesWorld, logged_in: TestClient
) -> None:
    world.move_clock(hours=3)
    page = logged_in.get("/sales")
    assert page.status_code == 200
    text = page.text
    assert f'href="/sales/handoffs/{hid(world)}"' in text
    for expected in (
        "Anne Martin",
        "anne@example.com",
        "Atelier Martin",
        ">120<",
        "Chaud",
        "alice@example.com",
        "il y a 3 h",
        "Reste 21 h",
        "Connecté·e : <strong>Alice Martin</strong>",
    ):
        assert expected in text, expected
    assert "en retard" not in text
    assert 'class="overdue"' not in text


def test_overdue_handoffs_stand_out_in_the_list_the_tab_and_the_page(
    world: SalesWorld, logged_in: TestClient
) -> None:
    world.push_to_sales("bob@example.com")
    world.move_clock(hours=22, minutes=45)  # Anne's SLA (10:30 + 24 h) is past; Bob's is not
    assert login(logged_in).status_code == 303  # a new day, a new session
    page = logged_in.get("/sales").text
    rows = page.split("<tr")[2:]
    anne, bob = (r for r in rows if "anne@" in r), (r for r in rows if "bob@" in r)
    anne_row, bob_row = next(anne), next(bob)
    assert 'class="overdue"' in anne_row and "⚠ en retard" in anne_row
    assert "En retard de 1 h 15" in anne_row
    assert 'class="overdue"' not in bob_row and "Reste" in bob_row
    assert '<span class="badge overdue">1 en retard</span>' in page
    detail = logged_in.get(f"/sales/handoffs/{hid(world)}").text
    assert "⚠ SLA dépassé de 1 h 15" in detail
    assert 'class="card head overdue"' in detail


def test_tabs_filter_by_status_and_owner(world: SalesWorld, logged_in: TestClient) -> None:
    token = csrf_of(logged_in, "/sales")
    logged_in.post(f"/sales/handoffs/{hid(world)}/accept", data={"csrf": token})
    open_page = logged_in.get("/sales?status=open").text
    assert "Aucun lead dans cette liste" in open_page
    accepted = logged_in.get("/sales?status=accepted").text
    assert "anne@example.com" in accepted and "par Alice Martin" in accepted
    assert "Aucun lead dans cette liste" in logged_in.get("/sales?status=bogus&owner=").text
    # A sales account sees its own handoffs whatever the filter says; a lead filters.
    assert "anne@example.com" in logged_in.get("/sales?status=accepted&owner=x@y.z").text
    assert 'id="owner"' not in accepted
    assert login(logged_in, email="lea@example.com").status_code == 303
    assert "anne@example.com" not in logged_in.get("/sales?status=accepted&owner=x@y.z").text
    lead = logged_in.get("/sales?status=accepted&owner=alice@example.com").text
    assert "anne@example.com" in lead and 'id="owner"' in lead


def test_everything_shown_is_escaped(world: SalesWorld, logged_in: TestClient) -> None:
    world.import_rows(
        "email,first_name,company,stage\n"
        'eve@example.com,"<script>alert(1)</script>","<b>Evil</b> & Co",lead\n'
    )
    world.signal(
        "content.downloaded",
        "eve@example.com",
        title="<img src=x onerror=alert(1)>",
        url="javascript:alert(1)",
    )
    world.signal("demo.requested", "eve@example.com")
    world.signal("page.visited", "eve@example.com", url="https://example.com/pricing")
    world.signal("content.downloaded", "eve@example.com", title="ok")
    eve = world.handoff("eve@example.com")
    assert eve is not None
    token = csrf_of(logged_in, "/sales")
    logged_in.post(
        f"/sales/handoffs/{eve.id}/reject",
        data={"csrf": token, "reason": '"><script>alert(2)</script>'},
    )
    for path in ("/sales?status=rejected", f"/sales/handoffs/{eve.id}"):
        text = logged_in.get(path).text
        assert "<script>" not in text and "<b>Evil" not in text and "<img" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    detail = logged_in.get(f"/sales/handoffs/{eve.id}").text
    assert 'href="javascript:' not in detail


# --- the detail page and the actions --------------------------------------------------------


def test_the_detail_page_has_what_sales_needs(world: SalesWorld, logged_in: TestClient) -> None:
    page = logged_in.get(f"/sales/handoffs/{hid(world)}")
    assert page.status_code == 200
    text = page.text
    for expected in (
        "Anne Martin",
        "Atelier Martin",
        "À traiter",
        "Score au transfert : 120",
        "content.downloaded",  # score breakdown and timeline
        "demo.requested",
        "+40",
        "Étude de cas Batipro",  # last content
        'href="https://example.com/cas"',
        "Bienvenue",  # email received
        "lead/welcome",
        "Transmis aux ventes",  # action log
        "cause : score",
        "24 nov. 11:30",  # SLA due, in Paris time and French
        "Accepter le lead",
        '<textarea id="reason-input" name="reason" required',
    ):
        assert expected in text, expected
    assert "Rouvrir" not in text


def test_an_unknown_handoff_page_is_404(world: SalesWorld, logged_in: TestClient) -> None:
    for path in ("/sales/handoffs/999", "/sales/handoffs/abc", f"/sales/handoffs/{2**64}"):
        response = logged_in.get(path)
        assert response.status_code == 404, path
        assert "Transfert introuvable" in response.text
    token = csrf_of(logged_in, "/sales")
    assert logged_in.post("/sales/handoffs/999/accept", data={"csrf": token}).status_code == 404
    bogus = logged_in.post(f"/sales/handoffs/{hid(world)}/delete", data={"csrf": token})
    assert bogus.status_code == 404


def test_reject_needs_a_reason(world: SalesWorld, logged_in: TestClient) -> None:
    path = f"/sales/handoffs/{hid(world)}"
    token = csrf_of(logged_in, path)
    for reason in ("", "   "):
        response = logged_in.post(f"{path}/reject", data={"csrf": token, "reason": reason})
        assert response.status_code == 422
        assert "Indiquez pourquoi" in response.text
    assert world.handoff().status == "open"  # type: ignore[union-attr]


def test_reject_then_reopen_through_the_forms(world: SalesWorld, logged_in: TestClient) -> None:
    path = f"/sales/handoffs/{hid(world)}"
    token = csrf_of(logged_in, path)
    response = logged_in.post(
        f"{path}/reject", data={"csrf": token, "reason": "Projet repoussé à 2027"}
    )
    assert (response.status_code, response.headers["location"]) == (303, f"{path}?done=reject")
    page = logged_in.get(response.headers["location"]).text
    assert "Lead renvoyé en nurturing." in page
    assert '<span class="status status-rejected" id="status">Renvoyé en nurturing</span>' in page
    assert "Projet repoussé à 2027" in page and "par Alice Martin" in page
    assert '<dd id="stage">lead</dd>' in page
    assert "<strong>recycle</strong> — active" in page
    anne = world.contact()
    assert (anne.stage, anne.score) == ("lead", 60.0)
    handoff = world.handoff()
    assert handoff is not None
    assert handoff.actions[-1]["by"] == "alice@example.com"
    assert handoff.actions[-1]["reason"] == "Projet repoussé à 2027"
    # A second click (another tab) on reject: 409, said on the page.
    again = logged_in.post(f"{path}/reject", data={"csrf": token, "reason": "encore"})
    assert again.status_code == 409 and "is rejected, not open" in again.text
    # Reopen.
    assert "Rouvrir le transfert" in page
    reopened = logged_in.post(f"{path}/reopen", data={"csrf": token})
    assert reopened.headers["location"] == f"{path}?done=reopen"
    assert world.handoff().status == "open"  # type: ignore[union-attr]
    assert world.contact().stage == "sql"


def test_accept_through_the_form(world: SalesWorld, logged_in: TestClient) -> None:
    path = f"/sales/handoffs/{hid(world)}"
    token = csrf_of(logged_in, path)
    response = logged_in.post(f"{path}/accept", data={"csrf": token})
    assert response.headers["location"] == f"{path}?done=accept"
    page = logged_in.get(response.headers["location"]).text
    assert "Lead accepté." in page and "Accepté le" in page
    assert "Accepter le lead" not in page and "Rouvrir" not in page
    handoff = world.handoff()
    assert handoff is not None
    assert (handoff.status, handoff.decided_by) == ("accepted", "alice@example.com")


def test_the_stylesheet_is_served(client: TestClient) -> None:
    response = client.get("/sales/sales.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "tr.overdue" in response.text


def test_the_inbox_is_not_in_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/sales")]
    assert {"/v1/handoffs", "/v1/handoffs/{handoff_id}/reject"} <= set(paths)
