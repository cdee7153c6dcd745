"""Optional purposes: configuration, off by default, opt-in, separate and withdrawable, each change in the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from portail.accounts import members
from portail.config import Settings
from portail.consent import purposes
from portail.consent.errors import ConsentError
from portail.db import Database
from portail.oidc.models import ConsentEvent

CONFIG = """
[[purposes]]
key = "annuaire"
title_fr = "Figurer dans l’annuaire des membres"
title_en = "Be listed in the members' directory"
description_fr = "Votre nom et vos organisations sont visibles des autres membres."
description_en = "Your name and organizations are visible to other members."

[[purposes]]
key = "recherche"
title_fr = "Statistiques anonymisées pour la recherche"
title_en = "Anonymized statistics for research"
instances = ["nuage"]
"""


@pytest.fixture
def configured(unit_settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "instances.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return unit_settings.replace(instances_file=str(path))


def test_purposes_are_read_from_the_instances_file(configured: Settings) -> None:
    found = purposes.configured(configured)
    assert [p.key for p in found] == ["annuaire", "recherche"]
    assert found[0].title("en") == "Be listed in the members' directory"
    assert found[0].description("fr-CA").startswith("Votre nom")
    assert found[1].instances == ("nuage",)


def test_without_an_instances_file_there_is_no_purpose(unit_settings: Settings) -> None:
    assert purposes.configured(unit_settings) == ()


@pytest.mark.parametrize(
    "text",
    [
        'purposes = "x"',
        "[[purposes]]\nkey = 'Bad Key'\ntitle_fr = 'a'\ntitle_en = 'b'",
        "[[purposes]]\nkey = 'ok'\ntitle_fr = 'a'",
        "[[purposes]]\nkey = 'ok'\ntitle_fr = 'a'\ntitle_en = 'b'\n" * 2,
        "[[purposes]]\nkey = 'ok'\ntitle_fr = 'a'\ntitle_en = 'b'\ninstances = 'nuage'",
    ],
)
def test_a_malformed_purpose_is_refused_with_a_message(text: str) -> None:
    import tomllib

    with pytest.raises(ConsentError):
        purposes.parse(tomllib.loads(text))


def test_every_purpose_is_off_until_the_member_turns_it_on(db: Database, configured: Settings) -> None:
    with db.session() as session:
        member = members.create_member(session, email="a@example.org", name="A", password_hash="x")
        states = purposes.states(session, configured, member.id or 0)
        assert [(s.purpose.key, s.granted) for s in states] == [("annuaire", False), ("recherche", False)]


def test_turning_a_purpose_on_and_off_writes_the_ledger_once_per_change(db: Database, configured: Settings) -> None:
    with db.session() as session:
        member = members.create_member(session, email="a@example.org", name="A", password_hash="x")
        mid = member.id or 0
        assert purposes.choose(session, configured, mid, "annuaire", True)
        assert not purposes.choose(session, configured, mid, "annuaire", True)  # already on: nothing written
        assert purposes.is_granted(session, mid, "annuaire")
        assert not purposes.is_granted(session, mid, "recherche")  # separate
        assert purposes.choose(session, configured, mid, "annuaire", False)
        assert not purposes.is_granted(session, mid, "annuaire")
        events = session.exec(select(ConsentEvent).where(ConsentEvent.member_id == mid)).all()
        assert [(e.purpose, e.action, e.client_id) for e in events] == [
            ("annuaire", "granted", ""),
            ("annuaire", "withdrawn", ""),
        ]
        assert all(e.policy_version == configured.privacy_policy_version for e in events)


def test_an_unknown_purpose_is_refused(db: Database, configured: Settings) -> None:
    with db.session() as session, pytest.raises(ConsentError) as caught:
        purposes.choose(session, configured, 1, "inconnue", True)
    assert caught.value.status == 404
