"""Signing keys: generation, encryption at rest, rotation and the in-process ring."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import Session, select

from portail.config import Settings
from portail.db import Database, utcnow
from portail.oidc import keys
from portail.oidc.models import SigningKey

# Key generation and loading themselves, not the pool of tests/conftest.py.
pytestmark = pytest.mark.real_signing_keys


def test_private_keys_are_stored_encrypted(db: Database, unit_settings: Settings) -> None:
    keys.install(db, unit_settings)
    with Session(db.engine) as session:
        rows = list(session.exec(select(SigningKey)))
    assert {r.alg for r in rows} == {"RS256", "ES256"}
    for row in rows:
        assert '"d"' not in row.private_jwk_encrypted
        assert "d" not in row.public_jwk
        decrypted = json.loads(keys._fernet(unit_settings.secret_key).decrypt(row.private_jwk_encrypted.encode()))
        assert decrypted["d"]


def test_a_signed_token_verifies_and_names_its_key(db: Database, unit_settings: Settings) -> None:
    ring = keys.install(db, unit_settings)
    token = ring.sign({"iss": "x", "n": 1}, typ="logout+jwt", alg="ES256")
    header, claims = ring.decode(token)
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] == ring.signing_key("ES256").kid
    assert claims == {"iss": "x", "n": 1}


def test_a_tampered_token_is_refused(db: Database, unit_settings: Settings) -> None:
    ring = keys.install(db, unit_settings)
    head, body, sig = ring.sign({"sub": "a"}).split(".")
    forged = head + "." + body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + sig
    with pytest.raises(keys.BadSignature):
        ring.decode(forged)
    with pytest.raises(keys.BadSignature):
        ring.decode("not.a.jwt")


def test_rotation_publishes_the_new_key_first_and_keeps_the_old_one_until_tokens_expire(
    db: Database, unit_settings: Settings
) -> None:
    ring = keys.install(db, unit_settings)
    old = ring.signing_key("RS256").kid
    with db.session() as session:
        new = {k.alg: k.kid for k in keys.rotate(session, unit_settings)}
    ring.load()
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert {old, new["RS256"], new["ES256"]} <= published
    assert ring.signing_key("RS256").kid == old  # the new key is pending for the lead time
    with db.session() as session:
        row = session.exec(select(SigningKey).where(SigningKey.kid == old)).one()
        lifetime = dt.timedelta(minutes=max(unit_settings.id_token_minutes, unit_settings.access_token_minutes))
        assert row.unpublish_after is not None and row.retired_at is not None
        assert row.unpublish_after - row.retired_at >= lifetime
        assert keys.key_state(row, utcnow()) == "signing"
        assert keys.key_state(row, row.retired_at + dt.timedelta(seconds=1)) == "retired"
        assert keys.key_state(row, row.unpublish_after + dt.timedelta(seconds=1)) == "expired"


def test_rotation_without_lead_signs_with_the_new_key_at_once(db: Database, unit_settings: Settings) -> None:
    ring = keys.install(db, unit_settings)
    before = ring.signing_key("RS256").kid
    with db.session() as session:
        new = {k.alg: k.kid for k in keys.rotate(session, unit_settings, lead=dt.timedelta(0))}
    ring.load()
    assert ring.signing_key("RS256").kid == new["RS256"] != before
    assert before in {k["kid"] for k in ring.jwks()["keys"]}


def test_keys_from_another_secret_key_are_not_used(db: Database, unit_settings: Settings) -> None:
    keys.install(db, unit_settings)
    other = unit_settings.replace(secret_key="another-secret-" + "y" * 40)
    ring = keys.KeyRing(db.engine, other)
    ring.load()
    with pytest.raises(keys.NoKey):
        ring.signing_key("RS256")


def test_keys_unreadable_after_a_secret_key_change_are_replaced_at_startup(
    db: Database, unit_settings: Settings
) -> None:
    first = keys.install(db, unit_settings).signing_key("RS256").kid
    other = unit_settings.replace(secret_key="another-secret-" + "y" * 40)
    ring = keys.install(db, other)
    assert ring.signing_key("RS256").kid != first
    assert ring.decode(ring.sign({"a": 1}))[1] == {"a": 1}


def test_the_ring_travels_with_the_units_of_work_of_its_database(db: Database, unit_settings: Settings) -> None:
    with db.session() as session, pytest.raises(keys.NoKey):
        keys.ring_of(session)  # nothing attached: no ring from another application either
    ring = keys.install(db, unit_settings)
    with db.session() as session:
        assert keys.ring_of(session) is ring
    assert keys.ring_in(db) is ring


def test_a_commands_ring_loads_the_stored_keys_and_never_replaces_them(db: Database, unit_settings: Settings) -> None:
    """``open_database`` attaches a ring that neither generates nor rotates: a command run with the wrong
    secret key must not replace the server's keys."""
    other = unit_settings.replace(secret_key="another-secret-" + "y" * 40)
    with pytest.raises(keys.NoKey):
        keys.attach(db, other).signing_key("RS256")  # no key yet: none is generated
    served = keys.install(db, unit_settings).signing_key("RS256").kid
    with pytest.raises(keys.NoKey):
        keys.attach(db, other).signing_key("RS256")  # unreadable with this secret key: none is rotated in
    assert keys.attach(db, unit_settings).signing_key("RS256").kid == served


def test_a_verified_token_is_remembered_but_only_until_its_key_is_gone(db: Database, unit_settings: Settings) -> None:
    ring = keys.install(db, unit_settings)
    token = ring.sign({"sub": "a", "n": 1}, typ="at+jwt", alg="ES256")
    first = ring.decode(token)
    first[1]["n"] = 2  # what a caller does to its copy does not change what is remembered
    assert ring.decode(token) == (
        {"alg": "ES256", "kid": ring.signing_key("ES256").kid, "typ": "at+jwt"},
        {"sub": "a", "n": 1},
    )
    with pytest.raises(keys.BadSignature):  # the algorithm list is still applied to a remembered token
        ring.decode(token, algorithms=("RS256",))
    head, body, sig = token.split(".")
    with pytest.raises(keys.BadSignature):  # a token differing by one character is verified, and refused
        ring.decode(head + "." + body + "." + sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB"))
    kid = ring.signing_key("ES256").kid
    with db.session() as session:  # the key is deleted (as expired keys are); the ring reloads
        session.delete(session.exec(select(SigningKey).where(SigningKey.kid == kid)).one())
    ring.load()
    with pytest.raises(keys.BadSignature):
        ring.decode(token)


def test_the_memory_of_verified_tokens_is_bounded(
    db: Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "VERIFIED_CACHE_SIZE", 3)
    ring = keys.install(db, unit_settings)
    tokens = [ring.sign({"n": n}, alg="ES256") for n in range(10)]
    for token in tokens:
        ring.decode(token)
    assert len(ring._verified) == 3 and set(ring._verified) == set(tokens[-3:])
    assert ring.decode(tokens[0])[1] == {"n": 0}  # forgotten ones still verify, the slow way
