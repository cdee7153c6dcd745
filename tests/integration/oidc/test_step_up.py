"""Step-up: a tool asking for multi-factor (``acr_values``, the ``claims`` parameter, its registered
``default_acr_values`` or the ``mfa_required_clients`` setting) gets it; ID tokens carry ``amr``
(RFC 8176) and ``acr`` (OIDC Core §2); discovery lists the ACR values the code provides."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.oidc import claims
from tests.conftest import BASE_URL, login
from tests.oidc_flow import Flow, decode, make_client, query_of
from tests.second_factor import code_at, enrol_totp, second_step

MFA = claims.ACR_MFA


def browser(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url=BASE_URL, follow_redirects=False)


def walk(flow: Flow, response, secret: str | None = None):  # type: ignore[no-untyped-def]
    """Follow the flow to the client's callback, answering the second step with a fresh code."""
    for _ in range(8):
        assert response.status_code in (302, 303), response.text
        location = response.headers["location"]
        if location.startswith(flow.redirect_uri):
            return query_of(location)
        if location.startswith("/login/second-step"):
            assert secret is not None, "a second step was asked for"
            response = second_step(flow.http, code_at(secret, 1), query_of(location)["next"])
        elif location.startswith("/login"):
            response = flow.log_in(location)
        elif location.startswith("/authorize/consent/"):
            response = flow.consent(location)
        else:
            response = flow.http.get(location)
    raise AssertionError("the flow did not reach the client")


def id_token(flow: Flow, params: dict[str, str]) -> dict[str, object]:
    response = flow.token(params["code"])
    assert response.status_code == 200, response.text
    return dict(decode(flow.http, response.json()["id_token"]))


def test_a_password_login_says_pwd_and_the_password_level(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    claims_ = Flow(client, client_id, secret).tokens()
    token = decode(client, claims_["id_token"])
    assert token["amr"] == ["pwd"] and token["acr"] == claims.ACR_PASSWORD


def test_acr_values_mfa_steps_up_a_password_session(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, client_secret = make_client(settings)
    Flow(client, client_id, client_secret).tokens()  # a session opened with the password only
    other = browser(client)
    login(other)
    secret, _codes, _page = enrol_totp(other)  # enrolled elsewhere: this session is still password-only

    flow = Flow(client, client_id, client_secret)
    first = flow.authorize(acr_values=MFA)
    assert first.status_code == 303 and first.headers["location"].startswith("/login/second-step?next=")
    token = id_token(flow, walk(flow, first, secret))
    assert token["acr"] == MFA and {"pwd", "otp", "mfa"} <= set(token["amr"])  # type: ignore[arg-type]

    again = Flow(client, client_id, client_secret)
    assert id_token(again, walk(again, again.authorize(acr_values=MFA)))["acr"] == MFA  # no second ask


def test_prompt_none_with_acr_mfa_on_a_password_session_is_interaction_required(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, client_secret = make_client(settings)
    Flow(client, client_id, client_secret).tokens()
    response = Flow(client, client_id, client_secret).authorize(acr_values=MFA, prompt="none")
    assert query_of(response.headers["location"])["error"] == "interaction_required"


def test_a_member_without_a_factor_is_guided_to_enrol_then_continues(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, client_secret = make_client(settings)
    flow = Flow(client, client_id, client_secret)
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}}})
    first = flow.authorize(claims=essential)
    login_page = first.headers["location"]
    to_second_step = flow.log_in(login_page)
    resumed = client.get(to_second_step.headers["location"])
    step = resumed.headers["location"]
    assert step.startswith("/login/second-step")
    page = client.get(step)
    assert "exige une validation en deux étapes" in page.text
    next_url = query_of(step)["next"]
    _secret, codes, codes_page = enrol_totp(client, next_url)
    assert len(codes) == 10 and f'href="{next_url}"' in codes_page.text  # "continue" goes back to the tool
    token = id_token(flow, walk(flow, client.get(next_url)))
    assert token["acr"] == MFA


def open_registration(settings: Settings) -> TestClient:
    """The application with open dynamic registration (a tool registers itself, RFC 7591)."""
    app = create_app(settings.replace(open_client_registration=True), migrate=False)
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


def test_a_client_registered_with_default_acr_values_mfa_always_gets_it(settings: Settings, member: Member) -> None:
    with open_registration(settings) as http:
        login(http)
        secret, _codes, _page = enrol_totp(http)
        http.cookies.clear()
        metadata = {"redirect_uris": ["http://localhost:9000/callback"], "default_acr_values": [MFA]}
        registered = http.post("/register", json=metadata)
        assert registered.status_code == 201, registered.text
        assert registered.json()["default_acr_values"] == [MFA]
        flow = Flow(http, registered.json()["client_id"], registered.json()["client_secret"])
        first = flow.authorize()
        assert first.headers["location"].startswith("/login?")
        token = id_token(flow, walk(flow, first, secret))
    assert token["acr"] == MFA and "otp" in token["amr"]  # type: ignore[operator]


def test_unsupported_default_acr_values_are_refused(settings: Settings) -> None:
    with open_registration(settings) as http:
        answer = http.post(
            "/register", json={"redirect_uris": ["http://localhost:9000/cb"], "default_acr_values": ["x"]}
        )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client_metadata"


def test_the_mfa_required_clients_setting_requires_mfa_for_that_client(settings: Settings, member: Member) -> None:
    client_id, client_secret = make_client(settings)
    strict = settings.replace(mfa_required_clients=f"other-tool {client_id}")
    with TestClient(create_app(strict, migrate=False), base_url=BASE_URL, follow_redirects=False) as http:
        flow = Flow(http, client_id, client_secret)
        response = flow.log_in(flow.authorize().headers["location"])
        resumed = http.get(response.headers["location"])
        assert resumed.headers["location"].startswith("/login/second-step")


def test_discovery_lists_the_acr_values_the_code_provides(client: TestClient) -> None:
    document = client.get("/.well-known/openid-configuration").json()
    assert document["acr_values_supported"] == [claims.ACR_PASSWORD, claims.ACR_MFA]


def test_prompt_login_runs_the_whole_login_again_second_step_included(
    client: TestClient, settings: Settings, member: Member
) -> None:
    login(client)
    secret, _codes, _page = enrol_totp(client)
    client_id, client_secret = make_client(settings)
    flow = Flow(client, client_id, client_secret)
    first = flow.authorize(prompt="login")
    assert first.headers["location"].startswith("/login?")
    to_second = flow.log_in(first.headers["location"])
    assert to_second.headers["location"].startswith("/login/second-step")
    token = id_token(flow, walk(flow, to_second, secret))
    assert {"pwd", "otp", "mfa"} <= set(token["amr"]) and token["acr"] == MFA  # type: ignore[arg-type]
