"""Bad authorization requests (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 7636 §4.4.1).

RFC 6749 §4.1.2.1: when the client or the redirect URI is invalid, the authorization server MUST
NOT redirect; it informs the resource owner. Otherwise the error goes to the redirect URI with the
client's ``state`` (and ``iss``, RFC 9207). In every case nothing is created.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc.models import AuthorizationCode, OAuthClient, ParkedRequest
from tests.conftest import BASE_URL
from tests.oidc_flow import REDIRECT_URI, Flow, change, make_client, query_of, rows


def _nothing_created(settings: Settings) -> None:
    assert rows(settings, ParkedRequest) == []
    assert rows(settings, AuthorizationCode) == []


def _client_error(response_location: str, error: str, state: str | None = None) -> dict[str, str]:
    assert response_location.startswith(REDIRECT_URI + "?"), response_location
    params = query_of(response_location)
    assert params["error"] == error, params
    assert params["iss"] == BASE_URL
    if state is not None:
        assert params["state"] == state
    return params


def test_an_unknown_client_gets_an_error_page_not_a_redirect(client: TestClient, settings: Settings) -> None:
    response = Flow(client, "no-such-client").authorize()
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "n’est pas (ou plus) enregistré" in response.text
    _nothing_created(settings)


def test_the_error_page_speaks_the_visitors_language(client: TestClient, settings: Settings) -> None:
    response = client.get(
        "/authorize?" + urlencode({"client_id": "nope", "response_type": "code"}), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400
    assert response.headers["content-language"] == "en"
    assert "not (or no longer) registered" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:9000/other",
        REDIRECT_URI + "?extra=1",
        REDIRECT_URI + "#fragment",
        "http://localhost:9001/callback",
        "https://localhost:9000/callback",
        "http://LOCALHOST:9000/callback",
        "http://localhost:9000/Callback",
        "",
    ],
)
def test_a_redirect_uri_not_registered_exactly_is_refused_on_a_page(
    client: TestClient, settings: Settings, redirect_uri: str
) -> None:
    client_id, secret = make_client(settings)
    response = Flow(client, client_id, secret, redirect_uri=redirect_uri).authorize()
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "adresse de retour" in response.text
    _nothing_created(settings)


def test_a_disabled_client_cannot_start_a_login(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)

    def disable(session: Session) -> None:
        row = session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).one()
        row.disabled_at = datetime.now(UTC)
        session.add(row)

    change(settings, disable)
    response = Flow(client, client_id, secret).authorize()
    assert response.status_code == 400 and "location" not in response.headers
    _nothing_created(settings)


def test_a_public_client_without_pkce_gets_invalid_request(client: TestClient, settings: Settings) -> None:
    client_id, _ = make_client(settings, public=True)
    flow = Flow(client, client_id)
    response = flow.authorize(code_challenge=None, code_challenge_method=None)  # type: ignore[arg-type]
    _client_error(response.headers["location"], "invalid_request", flow.state)
    _nothing_created(settings)


def test_plain_pkce_is_refused(client: TestClient, settings: Settings) -> None:
    """RFC 7636 §4.2: Portail supports S256 only; plain is refused even for confidential clients."""
    for public in (True, False):
        client_id, _ = make_client(settings, public=public, client_id=f"c-{public}")
        flow = Flow(client, client_id)
        response = flow.authorize(code_challenge=flow.verifier, code_challenge_method="plain")
        params = _client_error(response.headers["location"], "invalid_request", flow.state)
        assert "plain" in params["error_description"]
        response = flow.authorize(code_challenge_method=None)  # type: ignore[arg-type]
        _client_error(response.headers["location"], "invalid_request", flow.state)
    _nothing_created(settings)


def test_an_unknown_scope_gets_invalid_scope(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(scope="openid wallet").headers["location"], "invalid_scope", flow.state)
    _client_error(flow.authorize(scope="").headers["location"], "invalid_scope", flow.state)
    _nothing_created(settings)


def test_a_scope_the_client_may_not_request_gets_invalid_scope(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings, scope="openid profile")
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(scope="openid email").headers["location"], "invalid_scope", flow.state)
    _nothing_created(settings)


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "none"])
def test_an_unsupported_response_type_is_refused(client: TestClient, settings: Settings, response_type: str) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    response = flow.authorize(response_type=response_type)
    _client_error(response.headers["location"], "unsupported_response_type", flow.state)
    _nothing_created(settings)


def test_a_missing_response_type_is_invalid_request(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(response_type=None).headers["location"], "invalid_request")  # type: ignore[arg-type]


def test_a_repeated_parameter_is_invalid_request(client: TestClient, settings: Settings) -> None:
    """RFC 6749 §3.1: request parameters MUST NOT be included more than once."""
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    query = urlencode(flow.params()) + "&scope=openid"
    response = client.get("/authorize?" + query)
    params = _client_error(response.headers["location"], "invalid_request", flow.state)
    assert "scope" in params["error_description"]
    doubled = client.get("/authorize?" + urlencode(flow.params()) + "&client_id=" + client_id)
    assert doubled.status_code == 400 and "location" not in doubled.headers
    _nothing_created(settings)


def test_an_oversized_parameter_is_invalid_request(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    response = flow.authorize(nonce="n" * 5000)
    _client_error(response.headers["location"], "invalid_request", flow.state)
    huge = client.post("/authorize", data=flow.params(login_hint="x" * 70_000))
    assert huge.status_code == 400 and "location" not in huge.headers
    _nothing_created(settings)


def test_a_request_object_is_not_supported(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(request="eyJ.x.y").headers["location"], "request_not_supported", flow.state)
    _client_error(flow.authorize(request_uri="https://x").headers["location"], "request_uri_not_supported")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("prompt", "none login"),
        ("prompt", "sometimes"),
        ("max_age", "-1"),
        ("max_age", "soon"),
        ("max_age", "²"),
        ("claims", "[1]"),
    ],
)
def test_malformed_oidc_parameters_are_invalid_request(
    client: TestClient, settings: Settings, name: str, value: str
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(**{name: value}).headers["location"], "invalid_request", flow.state)
    _nothing_created(settings)


def test_an_unsupported_response_mode_is_invalid_request_in_the_query(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    _client_error(flow.authorize(response_mode="fragment").headers["location"], "invalid_request", flow.state)


def test_an_error_to_a_form_post_client_is_posted(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    response = flow.authorize(response_mode="form_post", scope="openid wallet")
    assert response.status_code == 200
    assert f'action="{REDIRECT_URI}"' in response.text
    assert 'name="error" value="invalid_scope"' in response.text
    assert f'name="state" value="{flow.state}"' in response.text
