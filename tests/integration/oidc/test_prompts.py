"""Prompts, consent and response modes (OIDC Core §3.1.2.1, §3.1.2.6; OAuth 2.0 Form Post
Response Mode; Law 25 consent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.oidc.models import AuthorizationCode, Consent, ConsentEvent, ParkedRequest
from tests.conftest import BASE_URL, create_member
from tests.oidc_flow import REDIRECT_URI, Flow, change, decode, make_client, query_of, rows


def test_prompt_none_without_a_session_is_login_required(client: TestClient, settings: Settings) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    response = flow.authorize(prompt="none")
    assert response.status_code == 302
    params = query_of(response.headers["location"])
    assert params["error"] == "login_required" and params["state"] == flow.state
    assert rows(settings, ParkedRequest) == []


def test_prompt_none_without_consent_is_consent_required_and_with_it_a_code(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    other_id, other_secret = make_client(settings, client_id="first-tool")
    Flow(client, other_id, other_secret).tokens()  # logs the browser in, consents to another tool
    silent = Flow(client, client_id, secret).authorize(prompt="none")
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    Flow(client, client_id, secret).tokens()
    again = Flow(client, client_id, secret).authorize(prompt="none")
    assert "code" in query_of(again.headers["location"])


def test_prompt_login_makes_a_logged_in_member_authenticate_again(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    first = Flow(client, client_id, secret).tokens()
    flow = Flow(client, client_id, secret)
    response = flow.authorize(prompt="login")
    assert response.status_code == 303 and "prompt=login" in response.headers["location"]
    assert client.get(response.headers["location"]).status_code == 200  # the form, despite the session
    after = flow.log_in(response.headers["location"])
    done = client.get(after.headers["location"])
    code = query_of(done.headers["location"])["code"]
    tokens = flow.token(code).json()
    assert decode(client, tokens["id_token"])["auth_time"] >= decode(client, first["id_token"])["auth_time"]
    assert decode(client, tokens["id_token"])["sid"] != decode(client, first["id_token"])["sid"]


def test_max_age_forces_a_new_login_once_exceeded(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret).tokens()
    fresh = Flow(client, client_id, secret).authorize(max_age="3600")
    assert fresh.status_code == 302 and "code" in query_of(fresh.headers["location"])
    stale = Flow(client, client_id, secret)
    response = stale.authorize(max_age="0")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?")
    after = stale.log_in(response.headers["location"])
    done = client.get(after.headers["location"])
    assert done.status_code == 302 and "code" in query_of(done.headers["location"])  # no loop with max_age=0
    silent = Flow(client, client_id, secret).authorize(max_age="0", prompt="none")
    assert query_of(silent.headers["location"])["error"] == "login_required"


def test_consent_is_remembered_and_asked_again_when_the_scopes_grow(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret, scope="openid").tokens()
    same = Flow(client, client_id, secret, scope="openid").authorize()
    assert same.status_code == 302
    grown = Flow(client, client_id, secret, scope="openid email").authorize()
    assert grown.status_code == 303 and grown.headers["location"].startswith("/authorize/consent/")
    Flow(client, client_id, secret, scope="openid email").consent(grown.headers["location"])
    consent = rows(settings, Consent)[0]
    assert consent.scopes == "email openid" and consent.implicit is False
    assert [e.action for e in rows(settings, ConsentEvent)] == ["granted", "extended"]


def test_claims_requested_beyond_the_scopes_need_consent(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret, scope="openid").tokens()
    asked = Flow(client, client_id, secret, scope="openid").authorize(claims='{"id_token": {"email": null}}')
    assert asked.headers["location"].startswith("/authorize/consent/")
    page = client.get(asked.headers["location"])
    assert "Votre adresse courriel" in page.text


@pytest.fixture
def new_policy_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.replace(privacy_policy_version="2099-01"), migrate=False)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as http:
        yield http


def test_consent_is_asked_again_when_the_privacy_policy_changes(
    client: TestClient, settings: Settings, member: Member, new_policy_client: TestClient
) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret).tokens()
    flow = Flow(new_policy_client, client_id, secret)
    first = flow.authorize()
    after_login = flow.log_in(first.headers["location"])
    resumed = new_policy_client.get(after_login.headers["location"])
    assert resumed.headers["location"].startswith("/authorize/consent/")
    flow.consent(resumed.headers["location"])
    assert rows(settings, Consent)[0].policy_version == "2099-01"
    assert [e.action for e in rows(settings, ConsentEvent)] == ["granted", "renewed"]


def test_prompt_consent_shows_the_page_even_when_consent_was_given(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    Flow(client, client_id, secret).tokens()
    response = Flow(client, client_id, secret).authorize(prompt="consent")
    assert response.headers["location"].startswith("/authorize/consent/")


def test_a_trusted_client_skips_the_page_but_the_consent_is_recorded(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings, trusted=True)
    flow = Flow(client, client_id, secret)
    first = flow.authorize()
    after_login = flow.log_in(first.headers["location"])
    resumed = client.get(after_login.headers["location"])
    assert resumed.status_code == 302 and resumed.headers["location"].startswith(REDIRECT_URI)
    consent = rows(settings, Consent)[0]
    assert consent.implicit is True and consent.client_id == client_id
    events = rows(settings, ConsentEvent)
    assert [e.action for e in events] == ["granted"] and "implicit" in events[0].detail


def test_deny_returns_access_denied_to_the_client(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.authorize()
    resumed = client.get(flow.log_in(first.headers["location"]).headers["location"])
    denied = flow.consent(resumed.headers["location"], decision="deny")
    params = query_of(denied.headers["location"])
    assert params["error"] == "access_denied" and params["state"] == flow.state and params["iss"] == BASE_URL
    assert rows(settings, AuthorizationCode) == [] and rows(settings, Consent) == []
    assert [e.action for e in rows(settings, ConsentEvent)] == ["denied"]
    again = client.get(resumed.headers["location"])
    assert again.status_code == 400  # the parked request is gone


def test_the_consent_form_needs_its_csrf_token(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.authorize()
    resumed = client.get(flow.log_in(first.headers["location"]).headers["location"])
    forged = client.post(resumed.headers["location"], data={"decision": "allow"})
    assert forged.status_code == 400
    assert rows(settings, Consent) == []


def test_an_unverified_member_is_asked_to_confirm_their_email(client: TestClient, settings: Settings) -> None:
    create_member(settings, email="new@example.org", verified=False)
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    first = flow.authorize()
    after_login = flow.log_in(first.headers["location"], email="new@example.org")
    page = client.get(after_login.headers["location"])
    assert page.status_code == 403
    assert "Confirmez d’abord votre adresse courriel" in page.text
    assert rows(settings, AuthorizationCode) == []


def test_form_post_delivers_the_code_in_an_auto_submitted_form(
    client: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    flow = Flow(client, client_id, secret)
    flow.tokens()
    response = flow.authorize(response_mode="form_post")
    assert response.status_code == 200
    assert f'<form method="post" action="{REDIRECT_URI}"' in response.text
    assert 'name="code" value="' in response.text and f'name="state" value="{flow.state}"' in response.text
    assert f'name="iss" value="{BASE_URL}"' in response.text
    assert '<script src="/static/oidc/form_post.js"></script>' in response.text and "<noscript>" in response.text
    csp = response.headers["content-security-policy"]
    assert "form-action 'self' http://localhost:9000" in csp and "script-src 'self'" in csp
    assert client.get("/static/oidc/form_post.js").status_code == 200


def test_an_expired_interaction_shows_a_page(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    first = Flow(client, client_id, secret).authorize()

    def expire(session: Session) -> None:
        for row in session.exec(select(ParkedRequest)):
            row.expires_at = row.created_at - dt.timedelta(seconds=1)
            session.add(row)

    change(settings, expire)
    next_url = query_of(first.headers["location"])["next"]
    response = client.get(next_url)
    assert response.status_code == 400 and "expiré" in response.text


def test_acr_is_always_in_the_id_token(client: TestClient, settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings)
    plain = Flow(client, client_id, secret).tokens()
    assert decode(client, plain["id_token"])["acr"] == "urn:encommun:acr:password"
    asked = Flow(client, client_id, secret).tokens(acr_values="urn:encommun:acr:password")
    assert decode(client, asked["id_token"])["acr"] == "urn:encommun:acr:password"


def test_pairwise_subjects_are_stable_per_sector_and_public_ones_shared(
    client: TestClient, settings: Settings, member: Member
) -> None:
    a, a_secret = make_client(settings, client_id="a", subject_type="pairwise")
    b, b_secret = make_client(settings, client_id="b", subject_type="pairwise")
    other_uri = "http://127.0.0.1:9000/callback"
    c, c_secret = make_client(settings, client_id="c", subject_type="pairwise", redirect_uris=[other_uri])
    p, p_secret = make_client(settings, client_id="p", subject_type="public")
    subs = {}
    for cid, secret, uri in ((a, a_secret, REDIRECT_URI), (b, b_secret, REDIRECT_URI), (c, c_secret, other_uri)):
        subs[cid] = decode(client, Flow(client, cid, secret, redirect_uri=uri).tokens()["id_token"])["sub"]
    public = decode(client, Flow(client, p, p_secret).tokens()["id_token"])["sub"]
    again = decode(client, Flow(client, a, a_secret).tokens()["id_token"])["sub"]
    assert subs["a"] == subs["b"] == again  # same sector (host of the redirect URIs)
    assert subs["c"] != subs["a"]
    assert public == member.public_id and public not in subs.values()
