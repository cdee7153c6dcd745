"""The export document holds every category of data Portail keeps about the member, and no secret."""

from __future__ import annotations

import json

from sqlmodel import SQLModel

from portail.accounts.extensions import AccountExtensions
from portail.config import Settings
from portail.consent import archive, export, hooks
from portail.db import Database
from tests.unit.consent.population import EMAIL, NAME, populate


def test_the_export_has_every_category_created_for_the_member(db: Database, unit_settings: Settings) -> None:
    hooks.install(
        AccountExtensions.attached_to(db), unit_settings
    )  # as create_app does: acceptances of Portail's policy go to the ledger
    with db.session() as session:
        people = populate(session)
        document = archive.build(session, unit_settings, people.member_id)
    assert document["format"] == "portail-export" and document["format_version"] == 1
    profile = document["profile"]
    assert (profile["email"], profile["name"]) == (EMAIL, NAME)
    assert profile["territory"] == {"slug": "mrc-test", "name": "MRC Test"}
    assert profile["roles"] == ["privacy-officer"]
    assert [s["user_agent"] for s in document["sessions"]] == ["Firefox 140"]
    assert document["login_failures"]["failures"] == 2
    assert document["mail_links"][0]["new_email"] == f"new.{EMAIL}"
    assert document["organizations"] == [
        {
            "slug": "obnl-test",
            "name": "OBNL Test",
            "kind": "organization",
            "region": None,
            "locality": None,
            "role": "admin",
            "status": "active",
            "since": document["organizations"][0]["since"],
        }
    ]
    assert document["hoster_roles"] == [{"hoster": "hebergeur", "name": "Hébergeur", "role": "hoster-admin"}]
    [tool] = document["tools"]
    assert tool["name"] == "Nuage En commun" and tool["data_categories"] == ["identité", "courriel"]
    assert tool["declared_purposes_en"] == ["Log you in"] and tool["data_categories_en"] == []
    assert tool["consent"]["scopes"] == ["openid", "profile", "email"] and tool["consent"]["claims"] == ["name"]
    assert tool["grants"][0]["scope"] == "openid profile email offline_access"
    assert tool["sessions"][0]["sid"] == people.sid
    assert tool["last_token_at"] and tool["last_userinfo_at"]
    assert sorted((e["client_id"], e["purpose"] or "", e["action"]) for e in document["consent_ledger"]) == [
        ("", "annuaire", "granted"),
        ("", "portail:privacy", "granted"),  # the acceptance of Portail's policy at creation
        ("nuage", "", "granted"),
    ]
    assert {(a["kind"], a["count"]) for a in document["access_log"]} == {("token", 3), ("userinfo", 1)}
    assert document["api_tokens"][0]["prefix"] == "pt_abc"
    actions = {e["action"]: e["by"] for e in document["audit_events"]}
    assert actions["member.disabled"] == "administrator" and actions["hoster.approved"] == "self"
    assert actions["member.created"] == "system"
    [note] = document["notifications"]
    assert (note["tool"], note["kind"], note["title"]) == ("Nuage En commun", "mention", f"{NAME} a été mentionnée")
    assert document["notification_preferences"] == [
        {"tool": "Nuage En commun", "enabled": True, "digest": "weekly", "last_digest_at": None,
         "updated_at": document["notification_preferences"][0]["updated_at"]}
    ]  # fmt: skip
    assert document["linked_accounts"][0]["account"] == "zoe"
    assert document["notification_sources"][0]["status"] == "ok"
    assert document["deletion_requests"][0]["status"] == "cancelled"
    assert document["exports"][0]["status"] == "ready"


def test_tables_without_a_section_are_exported_under_other(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        people = populate(session)
        document = archive.build(session, unit_settings, people.member_id)
    expected = {
        t.name
        for t in SQLModel.metadata.sorted_tables
        if t.name not in archive.COVERED and archive._member_column(t) is not None
    }
    assert set(document["other"]) == expected
    for rows in document["other"].values():
        assert len(rows) == 1


def test_the_export_never_contains_a_secret(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        people = populate(session)
        text = export.dumps(archive.build(session, unit_settings, people.member_id))
    for secret in ("argon2-hash", "a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64):
        assert secret not in text
    assert json.loads(text)["profile"]["password"].startswith("argon2id hash held")


def test_the_export_holds_only_this_member(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        people = populate(session)
        text = export.dumps(archive.build(session, unit_settings, people.member_id))
    assert "autre@example.org" not in text and "Autre Personne" not in text and "198.51.100.1" not in text
