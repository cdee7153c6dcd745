"""The account page lists sessions (device, approximate place, how they logged in); "Fermer toutes mes
autres sessions" ends them and their tools receive back-channel logout tokens (OIDC Back-Channel
Logout 1.0 §2.4) on a real loopback server; a login from a device never used before is mailed."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.accounts.sessions import approximate_place
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD, csrf_from, login, mail_text, outbox
from tests.oidc_flow import Flow, decode, make_client
from tests.stub_server import StubServer

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _logout_tokens(stub: StubServer, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        found = [parse_qs(body.decode())["logout_token"][0] for path, body in stub.posts if path == "/backchannel"]
        if len(found) >= count:
            break
        time.sleep(0.05)
    return found


def test_places_are_cut_to_a_network_never_the_full_address() -> None:
    assert approximate_place("203.0.113.77") == "203.0.113.0/24"
    assert approximate_place("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert approximate_place("not an address") == ""


def test_the_page_says_device_place_and_method(client: TestClient, member: Member) -> None:
    browser = TestClient(
        client.app,
        base_url=BASE_URL,
        follow_redirects=False,
        headers={"User-Agent": FIREFOX},
        client=("203.0.113.77", 4),
    )
    login(browser)
    page = browser.get("/account").text
    assert "Firefox sur Windows" in page and "Connexion par mot de passe" in page
    assert "réseau 203.0.113.0/24" in page and "203.0.113.77" not in page


def test_ending_my_other_sessions_logs_their_tools_out(
    client: TestClient, settings: Settings, member: Member, stub_server: StubServer
) -> None:
    stub_server.route("/backchannel", body="", status=200)
    client_id, secret = make_client(
        settings, name="Outil", client_id="outil", trusted=True, backchannel_logout_uri=f"{stub_server.url}/backchannel"
    )
    others = []
    for _ in range(2):
        browser = TestClient(client.app, base_url=BASE_URL, follow_redirects=False)
        others.append(decode(browser, Flow(browser, client_id, secret).tokens()["id_token"]))
    login(client)
    page = client.get("/account")
    assert page.text.count("Fermer cette session") == 3
    ended = client.post("/account/sessions/end-others", data={"csrf_token": csrf_from(page.text)})
    assert ended.status_code == 303
    assert "Vos autres sessions sont fermées (2)" in client.get("/account").text
    assert client.get("/account").text.count("Fermer cette session") == 1  # mine stays

    tokens = [decode(client, t) for t in _logout_tokens(stub_server, 2)]
    assert sorted(t["sid"] for t in tokens) == sorted(o["sid"] for o in others)
    assert all(LOGOUT_EVENT in t["events"] and t["aud"] in ("outil", ["outil"]) for t in tokens)


def test_ending_other_sessions_needs_the_form_token(client: TestClient, member: Member) -> None:
    login(client)
    assert client.post("/account/sessions/end-others", data={"csrf_token": "forged"}).status_code == 303
    assert "Fermer cette session" in client.get("/account").text


def test_a_login_from_a_new_device_is_mailed(client: TestClient, settings: Settings, member: Member) -> None:
    login(client)
    assert outbox(settings) == []  # the first login ever: nothing to compare with
    firefox = TestClient(client.app, base_url=BASE_URL, follow_redirects=False, headers={"User-Agent": FIREFOX})
    login(firefox)
    [mail] = outbox(settings)
    assert mail["Subject"] == "Nouvelle connexion à votre compte depuis un autre appareil"
    assert "Firefox / Windows" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    again = TestClient(client.app, base_url=BASE_URL, follow_redirects=False, headers={"User-Agent": FIREFOX})
    login(again)
    assert len(outbox(settings)) == 1  # a known device is not mailed again


def test_a_password_change_is_mailed_with_a_link_to_the_sessions(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    token = csrf_from(client.get("/account").text)
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "une toute nouvelle phrase",
            "new_password_confirm": "une toute nouvelle phrase",
        },
    )
    assert changed.status_code == 303
    [mail] = outbox(settings)
    assert mail["Subject"] == "Le mot de passe de votre compte a été changé"
    assert f"{settings.issuer}/account#sessions-h" in mail_text(mail)
