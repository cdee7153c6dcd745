"""Bad WebAuthn input through HTTP: the options endpoint refuses an unknown purpose or a missing
login with a JSON error; an unreadable or forged answer saves nothing and says why, in French."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from portail.accounts.mfa.models import Passkey
from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import csrf_from, login
from tests.oidc_flow import rows


def options(client: TestClient, purpose: str, page: str = "/login"):  # type: ignore[no-untyped-def]
    return client.post("/webauthn/options", data={"csrf_token": csrf_from(client.get(page).text), "purpose": purpose})


def test_options_for_a_passwordless_login_need_no_account(client: TestClient) -> None:
    answer = options(client, "login")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["rpId"] == "localhost" and body["userVerification"] == "required" and body["allowCredentials"] == []


def test_options_refuse_bad_purposes_forged_forms_and_missing_logins(client: TestClient) -> None:
    unknown = options(client, "everything")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"
    forged = client.post("/webauthn/options", data={"csrf_token": "x", "purpose": "login"})
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_request"
    for purpose in ("register", "second", "reauth"):
        answer = options(client, purpose)
        assert answer.status_code == 401 and answer.json()["error"] == "login_required"


def test_registration_options_ask_for_a_resident_key(client: TestClient, member: Member) -> None:
    login(client)
    body = options(client, "register", "/account/security").json()
    assert body["authenticatorSelection"]["residentKey"] == "required"
    assert body["authenticatorSelection"]["userVerification"] == "preferred"
    assert body["user"]["name"] == member.email and body["rp"]["id"] == "localhost"
    assert options(client, "second", "/account/security").status_code == 404  # no passkey yet


def test_an_unreadable_or_forged_registration_saves_nothing(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    token = csrf_from(client.get("/account/security").text)
    for credential in ("", "{not json", json.dumps({"response": {"clientDataJSON": "e30"}}), "[1]"):
        answer = client.post(
            "/account/security/passkey-add", data={"csrf_token": token, "name": "Clé", "credential": credential}
        )
        assert answer.status_code == 400
        assert "illisible" in answer.text or "expiré ou a déjà servi" in answer.text
    nameless = client.post("/account/security/passkey-add", data={"csrf_token": token, "name": " ", "credential": "{}"})
    assert nameless.status_code == 400 and "Donnez un nom" in nameless.text
    assert rows(settings, Passkey) == []


def test_a_forged_passwordless_answer_is_refused_on_the_login_page(client: TestClient) -> None:
    token = csrf_from(client.get("/login").text)
    answer = client.post("/login/passkey", data={"csrf_token": token, "credential": "{}", "next": "/"})
    assert answer.status_code == 401 and "Se connecter à En commun" in answer.text
    assert "portail_session" not in answer.cookies
