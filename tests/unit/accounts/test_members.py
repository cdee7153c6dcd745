"""Members: email normalization and case-insensitive uniqueness."""

from __future__ import annotations

import pytest

from portail.accounts.members import AccountError, clean_name, create_member, email_key, get_by_email, normalize_email
from portail.db import Database


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.ORG  ", "Alice@example.org"),
        ("bob@example.org.", "bob@example.org"),
        ("Zoe\u0301@exemple.ca", "Zoé@exemple.ca"),  # NFC: e + combining acute -> é
        ("élise@ÉCOLE.qc.ca", "élise@école.qc.ca"),
    ],
)
def test_normalize_email_trims_composes_and_lowercases_the_domain(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "alice@",
        "@example.org",
        "alice@localhost",
        "a b@example.org",
        "a@b@example.org",
        "alice@.example.org",
        "alice@example..org",
        "x" * 65 + "@example.org",
        "a@" + "b" * 320 + ".org",
    ],
)
def test_normalize_email_refuses_what_is_not_an_address(raw: str) -> None:
    with pytest.raises(AccountError) as raised:
        normalize_email(raw)
    assert raised.value.message == "Adresse courriel invalide."


def test_email_key_is_case_insensitive_and_normalization_independent() -> None:
    assert email_key(normalize_email("ZOE\u0301@Example.org")) == email_key(normalize_email("zoé@EXAMPLE.org"))


def test_addresses_are_unique_case_insensitively(db: Database) -> None:
    with db.session() as session:
        create_member(session, email="Alice@Example.org", name="Alice", password_hash="x")
    with db.session() as session, pytest.raises(AccountError) as raised:
        create_member(session, email="ALICE@example.ORG ", name="Autre Alice", password_hash="x")
    assert raised.value.message == "Un compte existe déjà avec cette adresse."
    with db.session() as session:
        found = get_by_email(session, "alice@EXAMPLE.org")
        assert found is not None and found.email == "Alice@example.org"
        assert get_by_email(session, "not an address") is None


def test_clean_name_collapses_spaces_and_refuses_control_characters() -> None:
    assert clean_name("  Béatrice   Gagnon \n") == "Béatrice Gagnon"
    for bad in ("", "   ", "n" * 201, "Ali\u0000ce", "Ali\u202ece"):
        with pytest.raises(AccountError):
            clean_name(bad)
