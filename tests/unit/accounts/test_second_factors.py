"""Second factors as domain modules: RFC 6238 time steps (drift of one step, each code once),
single-use recovery codes, RFC 8176 method lists, guarded page patterns, the relying party."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlmodel import Session

from portail.accounts import members
from portail.accounts.mfa import recovery, step_up, totp, webauthn
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database

NOW = dt.datetime(2026, 12, 4, 12, 0, 15, tzinfo=dt.UTC)


def _member(db: Database) -> Member:
    return db.call(
        lambda s: members.create_member(s, email="bea@example.org", name="Béa", password_hash="x", verified=True)
    )


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(totp, "utcnow", lambda: NOW)


def test_rfc_6238_codes_drift_one_step_and_count_once(db: Database, unit_settings: Settings, frozen: None) -> None:
    member = _member(db)
    key = unit_settings.secret_key
    secret = db.call(lambda s: totp.start(s, key, s.get(Member, member.id)))
    otp = pyotp.TOTP(secret)
    db.call(lambda s: totp.confirm(s, key, s.get(Member, member.id), otp.at(NOW)))

    def verify(code: str) -> bool:
        return bool(db.call(totp.verify, key, member.id or 0, code))

    assert not verify(otp.at(NOW))  # the confirmation used it
    assert not verify(otp.at(NOW - dt.timedelta(seconds=30)))  # older than the last accepted step
    assert not verify(otp.at(NOW + dt.timedelta(seconds=60)))  # two steps ahead: outside the drift window
    assert verify(otp.at(NOW + dt.timedelta(seconds=30)))  # one step ahead: clock drift
    assert not verify(otp.at(NOW + dt.timedelta(seconds=30)))  # never twice
    assert not verify("12345") and not verify("abcdef") and not verify("")


def test_enrolment_starts_again_and_refuses_a_second_app(db: Database, unit_settings: Settings, frozen: None) -> None:
    member = _member(db)
    key = unit_settings.secret_key
    first = db.call(lambda s: totp.start(s, key, s.get(Member, member.id)))
    second = db.call(lambda s: totp.start(s, key, s.get(Member, member.id)))
    assert first != second and db.call(totp.pending_secret, key, member.id or 0) == second
    db.call(lambda s: totp.confirm(s, key, s.get(Member, member.id), pyotp.TOTP(second).at(NOW)))
    with pytest.raises(members.AccountError):
        db.call(lambda s: totp.start(s, key, s.get(Member, member.id)))


def test_secrets_are_stored_encrypted(db: Database, unit_settings: Settings) -> None:
    member = _member(db)
    secret = db.call(lambda s: totp.start(s, unit_settings.secret_key, s.get(Member, member.id)))
    stored = db.call(lambda s: totp.pending(s, member.id or 0))
    assert stored is not None and secret not in stored.secret


def test_recovery_codes_are_single_use_and_forgiving_about_case_and_dashes(db: Database) -> None:
    member = _member(db)
    codes = db.call(recovery.generate, member.id or 0)
    assert len(codes) == 10 and all(len(c) == 19 for c in codes)
    assert db.call(recovery.use, member.id or 0, codes[0].upper().replace("-", " ")) == 9
    assert db.call(recovery.use, member.id or 0, codes[0]) is None
    assert db.call(recovery.use, member.id or 0, "aaaa-bbbb-cccc-dddd") is None
    assert db.call(recovery.use, 999, codes[1]) is None  # another member's code
    new = db.call(recovery.generate, member.id or 0)
    assert db.call(recovery.use, member.id or 0, codes[1]) is None and db.call(recovery.remaining, member.id or 0) == 10
    assert set(new).isdisjoint(codes)


def test_methods_merge_into_rfc_8176_values() -> None:
    assert step_up.merged_amr("pwd", "otp") == "pwd otp mfa"
    assert step_up.merged_amr("pwd", "hwk user") == "pwd hwk user mfa"
    assert step_up.merged_amr("pwd otp mfa", "otp") == "pwd otp mfa"
    assert step_up.merged_amr("pwd", "") == "pwd"
    assert step_up.is_mfa("hwk user mfa") and not step_up.is_mfa("pwd")


def test_guarded_pages_match_whole_segments() -> None:
    pages = ("/admin", "/federation/hosters/{slug}")
    assert step_up.guarded("/admin", pages) and step_up.guarded("/admin/oidc/clients", pages)
    assert not step_up.guarded("/administration", pages) and not step_up.guarded("/account", pages)
    assert step_up.guarded("/federation/hosters/abc/people", pages)
    assert not step_up.guarded("/federation/hosters", pages)


def test_the_relying_party_is_the_issuers_host_and_origin() -> None:
    rp = webauthn.relying_party("https://portail.encommun.example:8443/")
    assert rp.rp_id == "portail.encommun.example" and rp.origin == "https://portail.encommun.example:8443"


def test_administering_roles(db: Database) -> None:
    member = _member(db)

    def check(session: Session, roles: str, admin: bool) -> bool:
        row = session.get(Member, member.id)
        assert row is not None
        row.roles, row.is_admin = roles, admin
        return step_up.administers_others(session, row)

    assert not db.call(check, "", False)
    assert db.call(check, "privacy-officer", False) and db.call(check, "", True)
    assert db.call(check, "federation-admin", False)
