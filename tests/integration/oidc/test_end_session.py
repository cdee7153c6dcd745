"""RP-Initiated Logout 1.0 at ``/end-session``: confirmation, exact redirect matching, state, hints."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlmodel import select
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.oidc import keys
from portail.oidc.clients import ClientSpec, create_client
from portail.oidc.models import BackchannelDelivery, SessionClient
from tests.conftest import BASE_URL, login
from tests.interop.forms import forms_in

BYE = "https://tool.example/bye"


@pytest.fixture
def tool(settings: Settings) -> None:
    handle = database.Database(settings)
    with handle.session() as s:
        create_client(
            s,
            ClientSpec(
                name="Outil",
                client_id="tool",
                redirect_uris=["https://tool.example/cb"],
                post_logout_redirect_uris=[BYE, "https://tool.example/bye?from=portail"],
                backchannel_logout_uri="https://tool.example/backchannel",
            ),
        )
    handle.dispose()


def _sid(settings: Settings) -> str:
    handle = database.Database(settings)
    with handle.session() as s:
        row = s.exec(select(LoginSession).order_by(LoginSession.id.desc())).first()  # type: ignore[union-attr]
    handle.dispose()
    assert row is not None
    return row.sid


def _ended(settings: Settings, sid: str) -> bool:
    handle = database.Database(settings)
    with handle.session() as s:
        row = s.exec(select(LoginSession).where(LoginSession.sid == sid)).one()
    handle.dispose()
    return row.ended_at is not None


def _hint(settings: Settings, sid: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": settings.issuer, "aud": "tool", "sub": "someone", "sid": sid, "iat": now, "exp": now + 600}
    claims.update(changes)
    handle = database.Database(settings)  # the keys create_app stored, read by a ring of this test's own
    try:
        return keys.KeyRing(handle.engine, settings).sign({k: v for k, v in claims.items() if v is not None})
    finally:
        handle.dispose()


def _end_session(client: TestClient, **params: str) -> Any:
    return client.get("/end-session?" + urlencode(params))


def test_without_a_hint_the_member_confirms_then_is_logged_out(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    """§6: no id_token_hint (Nextcloud's default) → confirmation page, then redirect with state."""
    login(client)
    sid = _sid(settings)
    page = _end_session(client, client_id="tool", post_logout_redirect_uri=BYE, state="s-1")
    assert page.status_code == 200 and "Outil" in page.text
    assert not _ended(settings, sid)
    [form] = [f for f in forms_in(page.text) if ("decision", "logout") in f.buttons]
    assert form.action == "/end-session" and form.fields["csrf_token"]  # the form's own token, as a browser sends it
    assert form.fields["post_logout_redirect_uri"] == BYE and form.fields["state"] == "s-1"
    confirm = client.post(form.action, data={**form.fields, "decision": "logout"})
    assert confirm.status_code == 303
    assert confirm.headers["location"] == f"{BYE}?state=s-1"
    assert _ended(settings, sid)
    assert "portail_session=" in confirm.headers.get("set-cookie", "")


def test_the_confirmation_form_refuses_a_forged_post(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    login(client)
    sid = _sid(settings)
    response = client.post("/end-session", data={"csrf_token": "forged", "decision": "logout"})
    assert response.status_code == 400
    assert not _ended(settings, sid)


def test_a_hint_naming_this_session_logs_out_at_once(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    login(client)
    sid = _sid(settings)
    response = _end_session(
        client, id_token_hint=_hint(settings, sid), post_logout_redirect_uri=BYE + "?from=portail", state="x y"
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{BYE}?from=portail&state=x+y"
    assert _ended(settings, sid)


def test_an_expired_hint_is_still_accepted(client: TestClient, settings: Settings, member: Member, tool: None) -> None:
    """§2: the OP SHOULD accept ID Tokens whose exp has passed."""
    login(client)
    sid = _sid(settings)
    old = int(time.time()) - 7200
    response = _end_session(client, id_token_hint=_hint(settings, sid, iat=old, exp=old + 60))
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert _ended(settings, sid)


def test_a_post_from_the_tool_with_a_matching_hint_logs_out(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    """§2: the endpoint accepts POST with form parameters."""
    login(client)
    sid = _sid(settings)
    response = client.post("/end-session", data={"id_token_hint": _hint(settings, sid), "client_id": "tool"})
    assert response.status_code == 303
    assert _ended(settings, sid)


def test_a_hint_for_another_session_asks_for_confirmation(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    login(client)
    sid = _sid(settings)
    response = _end_session(client, id_token_hint=_hint(settings, "another-session"))
    assert response.status_code == 200 and 'value="logout"' in response.text
    assert not _ended(settings, sid)


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "tool", "post_logout_redirect_uri": "https://evil.example/bye"},
        {"client_id": "tool", "post_logout_redirect_uri": BYE + "?extra=1"},
        {"client_id": "tool", "post_logout_redirect_uri": BYE.upper()},
        {"client_id": "tool", "post_logout_redirect_uri": BYE + "#frag"},
        {"client_id": "tool", "post_logout_redirect_uri": "https://tool.example:444/bye"},
        {"post_logout_redirect_uri": BYE},
        {"client_id": "unknown", "post_logout_redirect_uri": BYE},
    ],
)
def test_an_unregistered_post_logout_redirect_uri_gets_an_error_page_never_a_redirect(
    client: TestClient, settings: Settings, member: Member, tool: None, params: dict[str, str]
) -> None:
    """§3: exact match against the client's registered list; §4: no redirect after an error."""
    login(client)
    sid = _sid(settings)
    response = _end_session(client, **params, state="s")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert not _ended(settings, sid)


def test_a_forged_or_foreign_hint_is_refused(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    """§2: the OP MUST validate that it issued the ID token."""
    login(client)
    sid = _sid(settings)
    other_key = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "RS256", "kid": "attacker"},
        {"iss": settings.issuer, "aud": "tool", "sid": sid, "sub": "x", "iat": now, "exp": now + 60},
        other_key,
    )
    for hint in (forged, "not-a-jwt", _hint(settings, sid, iss="https://other.example")):
        response = _end_session(client, id_token_hint=hint, post_logout_redirect_uri=BYE)
        assert response.status_code == 400 and "location" not in response.headers
    mismatch = _end_session(client, id_token_hint=_hint(settings, sid), client_id="other", post_logout_redirect_uri=BYE)
    assert mismatch.status_code == 400
    assert not _ended(settings, sid)


def test_repeated_parameters_are_refused(client: TestClient, settings: Settings, member: Member, tool: None) -> None:
    response = client.get(f"/end-session?client_id=tool&client_id=tool&post_logout_redirect_uri={BYE}")
    assert response.status_code == 400 and "location" not in response.headers


def test_without_a_session_the_visitor_goes_straight_to_the_registered_uri(
    client: TestClient, settings: Settings, tool: None
) -> None:
    response = _end_session(client, client_id="tool", post_logout_redirect_uri=BYE, state="abc")
    assert response.status_code == 303 and response.headers["location"] == f"{BYE}?state=abc"
    assert _end_session(client).headers["location"] == "/login"


def test_ui_locales_chooses_the_language_of_the_page(client: TestClient, settings: Settings, tool: None) -> None:
    response = _end_session(client, client_id="nobody", ui_locales="en-CA fr")
    assert response.status_code == 400
    assert response.headers["content-language"] == "en"
    assert "logout request is invalid" in response.text


def test_logging_out_from_a_tool_tells_every_other_tool_of_the_session(
    client: TestClient, settings: Settings, member: Member, tool: None
) -> None:
    login(client)
    sid = _sid(settings)
    handle = database.Database(settings)
    with handle.session() as s:
        create_client(
            s,
            ClientSpec(
                name="Matrix",
                client_id="matrix",
                redirect_uris=["https://matrix.example/cb"],
                backchannel_logout_uri="http://127.0.0.1:9/backchannel",
            ),
        )
        s.add(SessionClient(sid=sid, client_id="tool", member_id=member.id or 0))
        s.add(SessionClient(sid=sid, client_id="matrix", member_id=member.id or 0))
    response = _end_session(client, id_token_hint=_hint(settings, sid), post_logout_redirect_uri=BYE)
    assert response.status_code == 303
    with handle.session() as s:
        queued = sorted(r.client_id for r in s.exec(select(BackchannelDelivery)))
    handle.dispose()
    assert queued == ["matrix", "tool"]


def test_the_endpoint_url_has_no_query_string(client: TestClient) -> None:
    """Nextcloud appends ?post_logout_redirect_uri=… by concatenation."""
    url = str(client.app.url_path_for("end_session").make_absolute_url(BASE_URL))  # type: ignore[attr-defined]
    assert url == f"{BASE_URL}/end-session"


def test_every_form_of_the_login_page_carries_its_own_csrf_token(client: TestClient) -> None:
    """Regression: ``{% from "_macros.html" import csrf %}`` without context rendered an empty token."""
    forms = forms_in(client.get("/login").text)
    assert forms and all(f.fields.get("csrf_token") for f in forms if f.method == "post")


def test_discovery_lists_the_logout_and_registration_endpoints(client: TestClient) -> None:
    """RP-Initiated Logout §2.1 and RFC 7591 §3 metadata; Back-Channel Logout §2.1 flags."""
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["end_session_endpoint"] == f"{BASE_URL}/end-session"
    assert doc["registration_endpoint"] == f"{BASE_URL}/register"
    assert doc["backchannel_logout_supported"] is True and doc["backchannel_logout_session_supported"] is True
