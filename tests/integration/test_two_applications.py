"""Two applications in one process (tests, several workers' factories) share no state: each has its
own signing keys, API scopes, access rules, consent notes and account hooks, carried by its own
database's units of work (``Database.session_info``) and its ``app.state`` — nothing module-level."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts import extensions as account_extensions
from portail.accounts.mfa import step_up
from portail.accounts.models import Member
from portail.app import create_app
from portail.oidc import consent_notes, keys, prompts
from portail.oidc import extensions as provider_extensions
from portail.oidc.models import OAuthClient
from tests.conftest import make_settings


@pytest.fixture
def two_apps(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[Starlette, Starlette]]:
    apps = []
    for name, secret in (("a", "first-secret-" + "a" * 40), ("b", "second-secret-" + "b" * 40)):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(sqlite_template, folder / "portail.db")
        settings = make_settings(folder, f"sqlite:///{folder / 'portail.db'}").replace(
            secret_key=secret, issuer=f"http://{name}.localhost:8000"
        )
        apps.append(create_app(settings, migrate=False))
    yield apps[0], apps[1]
    for app in apps:
        app.state.db.dispose()


def _kids(app: Starlette) -> set[str]:
    response = TestClient(app).get(app.url_path_for("jwks"))
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def test_two_applications_sign_with_their_own_keys(two_apps: tuple[Starlette, Starlette]) -> None:
    a, b = two_apps
    assert a.state.keys is not b.state.keys
    assert _kids(a) and _kids(b) and not _kids(a) & _kids(b)
    with a.state.db.session() as session:
        assert keys.ring_of(session) is a.state.keys  # what tokens, logout tokens and SETs sign with
    with b.state.db.session() as session:
        assert keys.ring_of(session) is b.state.keys
    token = a.state.keys.sign({"iss": a.state.settings.issuer, "n": 1})
    assert a.state.keys.decode(token)[1] == {"iss": a.state.settings.issuer, "n": 1}
    with pytest.raises(keys.BadSignature):
        b.state.keys.decode(token)


def test_an_api_scope_declared_on_one_application_is_not_the_others(two_apps: tuple[Starlette, Starlette]) -> None:
    a, b = two_apps
    assert a.state.oidc is not b.state.oidc
    a.state.oidc.register_scope("test:only-a", "Une portée de A")
    scopes_a = TestClient(a).get("/.well-known/openid-configuration").json()["scopes_supported"]
    scopes_b = TestClient(b).get("/.well-known/openid-configuration").json()["scopes_supported"]
    assert "test:only-a" in scopes_a and "test:only-a" not in scopes_b
    assert "notifications:push" in scopes_a and "notifications:push" in scopes_b  # each declared its own
    with b.state.db.session() as session:
        assert "test:only-a" not in provider_extensions.of(session).api_scopes


def test_access_rules_notes_and_account_hooks_stay_with_their_application(
    two_apps: tuple[Starlette, Starlette],
) -> None:
    a, b = two_apps
    member, client = Member(id=1, email="x@example.org", name="X"), OAuthClient(client_id="tool", name="Outil")

    def closed(_db: Session, _member: Member, _client: OAuthClient) -> str | None:
        return "Fermé"

    def note(_db: Session, _client: OAuthClient, _locale: str) -> list[str]:
        return ["Une note de A"]

    def administers(_db: Session, _member: Member) -> bool:
        return True

    a.state.oidc.add_access_rule(closed)
    a.state.oidc.add_note_provider(note)
    a.state.extensions.add_administering_role(administers)

    def seen(session: Session) -> tuple[str | None, list[str], bool]:
        return (
            prompts.refusal(session, member, client),
            consent_notes.notes_for(session, client, "fr-CA"),
            step_up.administers_others(session, member),
        )

    assert a.state.db.call(seen) == ("Fermé", ["Une note de A"], True)
    assert b.state.db.call(seen)[0] is None
    assert "Une note de A" not in b.state.db.call(seen)[1]
    assert b.state.db.call(seen)[2] is False
    with a.state.db.session() as sa, b.state.db.session() as sb:
        assert account_extensions.of(sa) is a.state.extensions and account_extensions.of(sb) is b.state.extensions
