"""Password policy and argon2id hashing."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher
from passlib.hash import phpass

from portail.accounts.passwords import CheckUnavailable, Passwords, legacy_scheme, password_problem
from portail.config import Settings


def test_policy_refuses_short_long_and_common_passwords(unit_settings: Settings) -> None:
    assert password_problem("court", unit_settings) == "Le mot de passe doit compter au moins %(min)s caractères."
    assert password_problem("a" * 1025, unit_settings) == "Le mot de passe doit compter au plus %(max)s caractères."
    assert password_problem("password123", unit_settings) == "Ce mot de passe est trop courant. Choisissez-en un autre."
    assert password_problem("aaaaaaaaaaaaaa", unit_settings) is not None  # too few distinct characters
    assert password_problem("un mot de passe solide", unit_settings) is None
    assert password_problem("é" * 3 + "ß" * 3 + "ü" * 4, unit_settings) is None
    assert password_problem("Ab9" + "x" * 1021, unit_settings) is None  # exactly the maximum


def test_hash_is_argon2id_and_verifies_only_the_right_password(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)
    stored = passwords.hash("un mot de passe solide")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "un mot de passe solide")
    assert not passwords.verify(stored, "un mot de passe solidE")
    assert not passwords.verify("not a hash", "un mot de passe solide")
    passwords.close()


def test_unicode_passwords_verify_whatever_their_normalization_form(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)
    composed, decomposed = "café crème brûlée", "cafe\u0301 cre\u0300me bru\u0302le\u0301e"
    assert passwords.verify(passwords.hash(composed), decomposed)
    passwords.close()


def test_unknown_account_runs_a_dummy_verification_and_fails(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)
    assert passwords.dummy_hash.startswith("$argon2id$")
    assert passwords.verify(None, "portail-dummy-password-for-timing") is False
    assert passwords.verify(None, "anything at all") is False
    passwords.close()


def test_hash_with_older_parameters_needs_rehash(unit_settings: Settings) -> None:
    old = Passwords(unit_settings)
    stored = old.hash("un mot de passe solide")
    assert not old.needs_rehash(stored)
    stronger = Passwords(unit_settings.replace(argon2_time_cost=unit_settings.argon2_time_cost + 1))
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "un mot de passe solide")  # still accepted, then upgraded
    assert not stronger.needs_rehash(stronger.hash("un mot de passe solide"))
    assert stronger.needs_rehash("garbage")
    old.close()
    stronger.close()


def test_async_hash_and_verify_run_in_the_pool(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)

    async def roundtrip() -> tuple[bool, bool]:
        stored = await passwords.hash_async("un mot de passe solide")
        return await passwords.verify_async(stored, "un mot de passe solide"), await passwords.verify_async(
            stored, "wrong wrong wrong"
        )

    assert asyncio.run(roundtrip()) == (True, False)
    passwords.close()


def test_legacy_scheme_names_known_formats_and_refuses_truncated_or_unknown_ones() -> None:
    import bcrypt

    made = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    drupal = "$S$C33783772bRXEx1aCsvY.dqgaaSu76XmVlKrW9Qu8IQlvxHlmzLf"
    assert legacy_scheme(made) == "bcrypt"
    assert legacy_scheme(made.replace("$2b$", "$2y$", 1)) == "bcrypt"
    assert legacy_scheme(drupal) == "drupal7_sha512"
    assert legacy_scheme("{SSHA}CudZC+eE4D2PuUHTtMCt1mN+HnB9b01J") == "ldap_salted_sha1"
    for broken in (made[:-1], made[:20], drupal[:-2], "$P$H8d92tV9JxPFxdoR8Bpl8UwSN1Tdj8", "$2q$" + made[4:]):
        assert legacy_scheme(broken) is None, broken
    cheap = PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("x")
    assert legacy_scheme(cheap) == "argon2"
    assert legacy_scheme(cheap.replace("m=1024", "m=4194304")) is None  # 4 GiB at each login: refused
    django = "pbkdf2_sha256$%d$salt$" + "A" * 43 + "="
    assert legacy_scheme(django % 1_000_000) == "django_pbkdf2_sha256"
    assert legacy_scheme(django % 900_000_000) is None
    assert legacy_scheme(made.replace("$04$", "$31$", 1)) is None
    for unknown in ("5f4dcc3b5aa765d61d8327deb882cf99", "{MD5}X03MO1qnZdYdgyfeuILPmQ==", "{KEYCLOAK}alice", "x"):
        assert legacy_scheme(unknown) is None, unknown


def test_legacy_hash_verifies_in_its_format_then_needs_rehash(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)
    drupal = "$S$C33783772bRXEx1aCsvY.dqgaaSu76XmVlKrW9Qu8IQlvxHlmzLf"  # made by Drupal 7 for "hashcat"
    assert passwords.verify(drupal, "hashcat")
    assert not passwords.verify(drupal, "hashcaT")
    assert passwords.needs_rehash(drupal)
    decomposed = "e\u0301te\u0301"  # "été" typed as e + combining accent: the old tool hashed it so
    assert passwords.verify(phpass.hash(decomposed), decomposed)
    assert passwords.verify(phpass.hash("été"), decomposed)  # and a browser sending the other form
    assert not passwords.verify("", "anything") and not passwords.verify("$9$unknown", "anything")
    wordpress = "$wp$2y$10$5CG2SwZGLrV7fWDFGAd5f.qTdZqcFKm4bgonkif2iuCXg4zTHTBUW"  # a WordPress 6.8 hash
    assert passwords.verify(wordpress, "@ojisuperadminsolo") and not passwords.verify(wordpress, "@ojisuperadmin")
    passwords.close()


def test_remote_hash_asks_its_verifier_and_reports_it_unavailable(unit_settings: Settings) -> None:
    passwords = Passwords(unit_settings)
    assert not asyncio.run(passwords.verify_async("{REMOTE}alice", "pw"))  # no verifier: never valid
    asked: list[tuple[str, str]] = []

    async def verifier(identifier: str, password: str) -> bool:
        asked.append((identifier, password))
        if password == "down":
            raise CheckUnavailable
        return password == "right"

    passwords.register_remote("{REMOTE}", verifier)
    assert asyncio.run(passwords.verify_async("{REMOTE}alice", "right"))
    assert not asyncio.run(passwords.verify_async("{REMOTE}alice", "wrong"))
    with pytest.raises(CheckUnavailable):
        asyncio.run(passwords.verify_async("{REMOTE}alice", "down"))
    assert asked[0] == ("alice", "right") and passwords.needs_rehash("{REMOTE}alice")
    passwords.close()
