"""The command line: publish a policy version, export a member, grant the officer role, delete now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import select

from portail import cli
from portail.accounts.models import Member
from portail.config import Settings
from portail.consent.models import AccountEventDelivery, PrivacyPolicyVersion
from portail.oidc import keys
from tests.conftest import Receiver, db_call
from tests.unit.consent.population import mentions, populate


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``portail …`` against the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "load_settings", lambda: settings)

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_publish_records_a_version_and_refuses_a_duplicate(run, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    code, out, _err = run(
        "privacy", "publish", "2027-01", "--material", "--summary-fr", "Nouveau", "--summary-en", "New"
    )
    assert code == 0 and "2027-01" in out
    code, _out, err = run("privacy", "publish", "2027-01", "--minor", "--summary-fr", "x", "--summary-en", "y")
    assert code == 1 and "déjà publiée" in err and "already published" in err
    code, out, _err = run("privacy", "versions", "--json")
    assert json.loads(out)[0]["material"] is True
    assert db_call(settings, lambda s: len(s.exec(select(PrivacyPolicyVersion)).all())) == 1


def test_publish_requires_material_or_minor(run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        run("privacy", "publish", "2027-01", "--summary-fr", "x", "--summary-en", "y")


def test_users_export_writes_the_document(run, settings: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db_call(settings, populate)
    code, out, _err = run("users", "export", "zoe.lavoie-tremblay@example.org")
    assert code == 0 and json.loads(out)["profile"]["name"] == "Zoé Lavoie-Tremblay"
    target = tmp_path / "export.json"
    code, _out, _err = run("users", "export", "Zoe.Lavoie-Tremblay@example.org", "--output", str(target))
    assert code == 0 and json.loads(target.read_text())["tools"][0]["client_id"] == "nuage"
    assert target.stat().st_mode & 0o077 == 0
    code, _out, err = run("users", "export", "personne@example.org")
    assert code == 1 and "introuvable" in err


def test_grant_role_makes_a_privacy_officer(run, settings: Settings, member: Member) -> None:  # type: ignore[no-untyped-def]
    assert run("users", "grant-role", "alice@example.org", "privacy-officer")[0] == 0
    assert db_call(settings, lambda s: s.exec(select(Member.roles)).one()) == "privacy-officer"
    assert run("users", "grant-role", "alice@example.org", "privacy-officer")[0] == 0  # idempotent
    assert db_call(settings, lambda s: s.exec(select(Member.roles)).one()) == "privacy-officer"
    assert run("users", "revoke-role", "alice@example.org", "privacy-officer")[0] == 0
    assert db_call(settings, lambda s: s.exec(select(Member.roles)).one()) == ""


def test_delete_now_purges_and_tells_the_tool(run, settings: Settings, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    people = db_call(settings, populate)
    db_call(settings, lambda s: _point_events_to(s, f"{receiver.url}/events"))
    db_call(settings, lambda s: _link_matrix(s, settings, receiver.url, people.member_id))
    receiver.status = 200
    code, out, err = run("users", "delete", "zoe.lavoie-tremblay@example.org", "--now")
    assert code == 0, err
    assert "1 outil(s) avisé(s)" in out
    logout = [r for r in receiver.requests if r[1] == "/_matrix/client/v3/logout"]
    assert len(logout) == 1 and logout[0][2]["Authorization"] == "Bearer syt_device_token"
    [(method, path, headers, body)] = [r for r in receiver.requests if r[1] == "/events"]
    assert (method, path, headers["Content-Type"]) == ("POST", "/events", "application/secevent+jwt")
    keyset = KeySet.import_key_set(db_call(settings, lambda s: keys.ring_of(s).jwks()))
    claims = jwt.decode(body.decode(), keyset).claims
    assert claims["aud"] == "nuage"
    assert db_call(settings, lambda s: mentions(s, "zoe.lavoie-tremblay@example.org", "Zoé Lavoie-Tremblay")) == []
    assert db_call(settings, lambda s: s.get(Member, people.member_id)) is None
    [row] = db_call(settings, lambda s: list(s.exec(select(AccountEventDelivery))))
    assert row.status == "sent" and row.token == ""


def _point_events_to(session, uri: str) -> None:  # type: ignore[no-untyped-def]
    from portail.federation.models import Instance

    instance = session.exec(select(Instance)).one()
    instance.account_events_uri = uri
    session.add(instance)


def _link_matrix(session, settings: Settings, base_url: str, member_id: int) -> None:  # type: ignore[no-untyped-def]
    """The member linked a Matrix account: Portail holds a device token on that homeserver."""
    from portail.federation.models import Instance
    from portail.notifications.models import SourceLink
    from portail.notifications.sealing import seal

    homeserver = Instance(slug="matrix", name="Clavardage", software="matrix", base_url=base_url, status="active")
    session.add(homeserver)
    session.flush()
    secret = seal(settings.secret_key, "syt_device_token")
    session.add(SourceLink(member_id=member_id, instance_id=homeserver.id or 0, kind="matrix", secret_sealed=secret))
