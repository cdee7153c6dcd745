"""``portail clients …`` and ``portail keys …`` (ARCHITECTURE.md contract for ``clients create``)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from portail import cli
from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc.models import Consent, ConsentEvent, Grant, OAuthClient
from tests.oidc_flow import REDIRECT_URI, Flow, basic, rows


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for name in ("issuer", "database_url", "secret_key", "var_dir", "instances_file"):
        monkeypatch.setenv(f"PORTAIL_{name.upper()}", str(getattr(settings, name)))

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_clients_create_prints_the_id_and_secret_as_json(run, client: TestClient, member: Member) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("clients", "create", "--name", "Nextcloud", "--redirect-uri", REDIRECT_URI, "--json")
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"client_id", "client_secret"} and created["client_secret"]
    tokens = Flow(client, created["client_id"], created["client_secret"]).tokens()
    assert tokens["refresh_token"]  # CLI clients may use the refresh_token grant by default


def test_a_public_client_has_a_null_secret(run, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("clients", "create", "--name", "SPA", "--redirect-uri", REDIRECT_URI, "--public", "--json")
    assert code == 0 and json.loads(out)["client_secret"] is None
    row = rows(settings, OAuthClient)[0]
    assert row.token_endpoint_auth_method == "none" and row.subject_type == settings.default_subject_type


def test_create_accepts_every_documented_option(run, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(
        "clients", "create", "--name", "Synapse", "--client-id", "synapse",
        "--redirect-uri", REDIRECT_URI, "--redirect-uri", "http://localhost:9000/other",
        "--post-logout-redirect-uri", "http://localhost:9000/", "--backchannel-logout-uri", "http://localhost:9000/bc",
        "--trusted", "--subject-type", "public", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", "openid profile", "--audience", "api", "--json",
    )  # fmt: skip
    assert code == 0, err
    row = rows(settings, OAuthClient)[0]
    assert row.client_id == "synapse" and row.trusted and row.subject_type == "public"
    assert row.redirect_uris == [REDIRECT_URI, "http://localhost:9000/other"]
    assert row.backchannel_logout_uri == "http://localhost:9000/bc" and row.resource_audiences == ["api"]
    code, out, _ = run("clients", "show", "synapse", "--json")
    assert json.loads(out)["scope"] == "openid profile"
    code, out, _ = run("clients", "list")
    assert out.startswith("synapse\tSynapse\tconfidential\tpublic\ttrusted")


def test_invalid_clients_are_refused_with_one_line(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("clients", "create", "--name", "X", "--redirect-uri", "ftp://x", "--json")
    assert code == 1 and len(err.strip().splitlines()) == 1
    code, _, err = run("clients", "show", "nope")
    assert code == 1 and "no such client" in err


def test_rotate_secret_replaces_the_secret(run, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run(
        "clients", "create", "--name", "A", "--client-id", "a", "--grant-type", "client_credentials", "--json"
    )
    old = json.loads(out)["client_secret"]
    code, out, _ = run("clients", "rotate-secret", "a", "--json")
    new = json.loads(out)["client_secret"]
    assert code == 0 and new != old
    grant = {"grant_type": "client_credentials"}
    assert client.post("/token", data=grant, headers=basic("a", old)).status_code == 401
    assert client.post("/token", data=grant, headers=basic("a", new)).status_code == 200


def test_delete_revokes_tokens_and_withdraws_consent(
    run, client: TestClient, settings: Settings, member: Member
) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run("clients", "create", "--name", "A", "--redirect-uri", REDIRECT_URI, "--json")
    created = json.loads(out)
    issued = Flow(client, created["client_id"], created["client_secret"]).tokens()
    code, out, _ = run("clients", "delete", created["client_id"])
    assert code == 0 and "1" in out
    assert rows(settings, OAuthClient) == [] and rows(settings, Consent) == []
    assert all(g.revoked_at is not None for g in rows(settings, Grant))
    assert [e.action for e in rows(settings, ConsentEvent)] == ["granted", "withdrawn"]
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"}).status_code == 401


def test_keys_rotate_publishes_new_keys_and_lists_them(run, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    before = {k["kid"] for k in client.get("/jwks").json()["keys"]}
    code, out, _ = run("keys", "rotate")
    assert code == 0 and out.count("new key") == 2
    code, out, _ = run("keys", "list", "--json")
    states = sorted(k["state"] for k in json.loads(out))
    assert states == ["pending", "pending", "signing", "signing"]
    code, out, _ = run("keys", "rotate", "--now")
    listed = json.loads(run("keys", "list", "--json")[1])
    assert sorted(k["state"] for k in listed).count("signing") == 2
    assert before <= {k["kid"] for k in listed}


def test_clients_initial_token_is_a_clients_subcommand(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("clients", "initial-token", "--uses", "1", "--json")
    assert code == 0 and json.loads(out)
