"""Clients are cached in each process (``portail/oidc/client_cache.py``), and the cache is never
stale: a change made on one node, or straight in SQL, is seen by the very next request on every
other node. Two application instances on one database stand for two nodes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import client_cache, clients, tokens
from tests.conftest import BASE_URL
from tests.oidc_flow import REDIRECT_URI, Flow, basic, make_client

GRANTS = ["authorization_code", "refresh_token", "client_credentials"]


@contextmanager
def two_nodes(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(settings, migrate=False), base_url=BASE_URL, follow_redirects=False) as node_a,
        TestClient(create_app(settings, migrate=False), base_url=BASE_URL, follow_redirects=False) as node_b,
    ):
        yield node_a, node_b


def on(node: TestClient, fn: Any, *args: Any) -> Any:
    """Run ``fn(session, *args)`` in one unit of work of that node's own database handle."""
    return node.app.state.db.call(fn, *args)  # type: ignore[attr-defined]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _client_token(node: TestClient, client_id: str, secret: str) -> Any:
    return node.post("/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))


def _introspect(node: TestClient, client_id: str, secret: str, token: str) -> Any:
    return node.post("/introspect", data={"token": token}, headers=basic(client_id, secret))


def _warm(node: TestClient, client_id: str, secret: str, access_token: str) -> None:
    """Every endpoint that reads the client, once, so that node has it cached."""
    assert node.get("/userinfo", headers=_bearer(access_token)).status_code == 200
    assert _introspect(node, client_id, secret, access_token).json()["active"] is True
    assert _client_token(node, client_id, secret).status_code == 200


def _by_id(session: Session, client_id: str) -> clients.OAuthClient:
    row = clients.get_client(session, client_id)
    assert row is not None
    return row


def test_the_client_is_read_from_the_cache_while_nothing_changes(settings: Settings, member: Member) -> None:
    client_id, _secret = make_client(settings)
    with two_nodes(settings) as (node_a, node_b):
        first = on(node_a, client_cache.get, client_id)
        assert on(node_a, client_cache.get, client_id) is first
        assert on(node_b, client_cache.get, client_id) is not first  # each node has its own cache
        on(
            node_b,
            lambda s: clients.update_client(
                s, _by_id(s, client_id), clients.ClientSpec(name="Renamed", redirect_uris=[REDIRECT_URI])
            ),
        )
        renamed = on(node_a, client_cache.get, client_id)
        assert renamed is not first and renamed.name == "Renamed"
        assert on(node_a, client_cache.get, "no-such-client") is None


def test_a_client_disabled_on_one_node_is_refused_at_once_by_the_other(settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        issued = Flow(node_a, client_id, secret).tokens()
        _warm(node_b, client_id, secret, issued["access_token"])

        def disable(session: Session) -> None:
            clients.disable_client(session, _by_id(session, client_id))
            tokens.revoke_client_tokens(session, client_id, "client-disabled")

        on(node_a, disable)
        assert node_b.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 401
        assert _client_token(node_b, client_id, secret).status_code == 401
        assert _introspect(node_b, client_id, secret, issued["access_token"]).status_code == 401
        refreshed = Flow(node_b, client_id, secret).refresh(issued["refresh_token"])
        assert refreshed.status_code in (400, 401), refreshed.text


def test_a_token_from_a_node_whose_clock_runs_ahead_stays_revoked_after_reactivation(
    settings: Settings, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node B's clock runs two minutes ahead; it issues a client-credentials token, then node A
    suspends the client (all its tokens revoked) and reactivates it. The token stays refused: its
    generation is older than the client's (comparing its ``iat`` with the revocation time let it
    live again). A token issued after the reactivation works."""
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        real_time = tokens.time.time
        with monkeypatch.context() as ahead:
            ahead.setattr(tokens.time, "time", lambda: real_time() + 120)
            before = _client_token(node_b, client_id, secret).json()["access_token"]

        def suspend(session: Session) -> None:
            clients.disable_client(session, _by_id(session, client_id))
            tokens.revoke_client_tokens(session, client_id, "instance suspended")

        on(node_a, suspend)
        on(node_a, lambda s: clients.enable_client(s, _by_id(s, client_id)))
        for node in (node_a, node_b):
            assert _introspect(node, client_id, secret, before).json() == {"active": False}
        after = _client_token(node_b, client_id, secret).json()["access_token"]
        assert _introspect(node_a, client_id, secret, after).json()["active"] is True


def test_a_client_deleted_on_one_node_is_unknown_at_once_to_the_other(settings: Settings, member: Member) -> None:
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        issued = Flow(node_a, client_id, secret).tokens()
        _warm(node_b, client_id, secret, issued["access_token"])
        on(node_a, lambda s: clients.delete_client(s, _by_id(s, client_id), reason="test"))
        assert node_b.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 401
        refused = _client_token(node_b, client_id, secret)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_a_secret_rotated_on_one_node_stops_the_old_one_at_once_on_the_other(
    settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        assert _client_token(node_b, client_id, secret).status_code == 200
        new_secret = on(node_a, lambda s: clients.rotate_secret(s, _by_id(s, client_id)))
        assert _client_token(node_b, client_id, secret).status_code == 401
        assert _client_token(node_b, client_id, new_secret).status_code == 200


def test_a_change_made_in_sql_reaches_every_node(settings: Settings, member: Member) -> None:
    """The version is bumped by database triggers, not by Portail's code: any writer is seen."""
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        for node in (node_a, node_b):
            assert _client_token(node, client_id, secret).status_code == 200
        engine = sa.create_engine(settings.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE oauth_client SET disabled_at = :now WHERE client_id = :id"),
                    {"now": utcnow(), "id": client_id},
                )
        finally:
            engine.dispose()
        for node in (node_a, node_b):
            assert _client_token(node, client_id, secret).status_code == 401


@pytest.mark.parametrize("how", ["revoke-refresh", "revoke-access"])
def test_a_revocation_on_one_node_is_visible_at_once_on_the_other(settings: Settings, member: Member, how: str) -> None:
    """RFC 7009 §2: revoked on node A, refused by userinfo and inactive at introspection on node B."""
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        issued = Flow(node_a, client_id, secret).tokens()
        _warm(node_b, client_id, secret, issued["access_token"])
        token = issued["refresh_token"] if how == "revoke-refresh" else issued["access_token"]
        revoked = node_a.post("/revoke", data={"token": token}, headers=basic(client_id, secret))
        assert revoked.status_code == 200
        assert node_b.get("/userinfo", headers=_bearer(issued["access_token"])).status_code == 401
        assert _introspect(node_b, client_id, secret, issued["access_token"]).json() == {"active": False}


def test_refresh_and_introspection_take_the_client_on_trust_and_run_again_when_it_changed(
    settings: Settings, member: Member
) -> None:
    """A refresh and an introspection take the cached client without reading the version first
    (``client_cache``: the token lookup reads it). When the secret was rotated on another node, the
    first try with the new secret fails on the stale copy, is thrown away (nothing it wrote stays: the
    refresh token is still unused) and the request runs again strictly: the tool sees only success."""
    client_id, secret = make_client(settings, grant_types=GRANTS)
    assert secret is not None
    with two_nodes(settings) as (node_a, node_b):
        issued = Flow(node_a, client_id, secret).tokens()
        _warm(node_b, client_id, secret, issued["access_token"])
        new_secret = on(node_a, lambda s: clients.rotate_secret(s, _by_id(s, client_id)))
        flow = Flow(node_b, client_id, new_secret)
        refreshed = flow.refresh(issued["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert _introspect(node_b, client_id, new_secret, refreshed.json()["access_token"]).json()["active"] is True
        assert Flow(node_b, client_id, secret).refresh(refreshed.json()["refresh_token"]).status_code == 401
        assert _introspect(node_b, client_id, secret, refreshed.json()["access_token"]).status_code == 401
        # The refresh token of the thrown-away try was not rotated by it: the chain goes on.
        again = flow.refresh(refreshed.json()["refresh_token"])
        assert again.status_code == 200, again.text
        # A code exchange too: the code obtained before the next rotation is exchanged after it.
        code = flow.code()["code"]
        newest = on(node_a, lambda s: clients.rotate_secret(s, _by_id(s, client_id)))
        exchanged = Flow(node_b, client_id, newest, verifier=flow.verifier, challenge=flow.challenge).token(code)
        assert exchanged.status_code == 200, exchanged.text


def test_a_stale_client_taken_on_trust_is_caught_before_the_answer(settings: Settings, member: Member) -> None:
    """The unit: a client cached under an old version raises ``StaleClient`` at ``confirm``."""
    client_id, _secret = make_client(settings)
    with two_nodes(settings) as (node_a, node_b):
        on(node_b, client_cache.get, client_id)  # cached on node B under the current version

        def trusted_then_confirmed(session: Session) -> str:
            found = client_cache.cached_on_trust(session, client_id)
            assert found is not None
            client_cache.confirm(session)  # nothing changed: confirmed (reading the version)
            return found.name

        assert on(node_b, trusted_then_confirmed) == "Outil de test"
        on(node_a, lambda s: clients.disable_client(s, _by_id(s, client_id)))
        with pytest.raises(client_cache.StaleClient):
            on(node_b, trusted_then_confirmed)
