"""Password policy and argon2id hashing."""

from __future__ import annotations

import asyncio

from portail.accounts.passwords import Passwords, password_problem
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
