"""Privacy-policy versions: publishing, what counts as current, and what members must review."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from portail.accounts import members
from portail.accounts import policy as accounts_policy
from portail.accounts.extensions import AccountExtensions
from portail.config import Settings
from portail.consent import policy
from portail.consent.errors import ConsentError
from portail.consent.models import PrivacyPolicyVersion
from portail.db import Database


@pytest.fixture(autouse=True)
def published_versions(db: Database) -> None:
    policy.install(AccountExtensions.attached_to(db))


def _publish(session: Session, version: str, *, material: bool = True) -> None:
    policy.publish(
        session, version=version, material=material, summary_fr=f"Résumé {version}", summary_en=f"Sum {version}"
    )


def test_without_published_versions_the_setting_is_current(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        assert accounts_policy.current_version(session, unit_settings) == unit_settings.privacy_policy_version
        assert accounts_policy.consent_is_current(session, unit_settings, unit_settings.privacy_policy_version)
        assert not accounts_policy.consent_is_current(session, unit_settings, "1999-01")
        assert not accounts_policy.consent_is_current(session, unit_settings, "")


def test_a_minor_version_becomes_current_without_making_consents_stale(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        _publish(session, "2027-01", material=False)
        assert accounts_policy.current_version(session, unit_settings) == "2027-01"
        assert accounts_policy.consent_is_current(session, unit_settings, unit_settings.privacy_policy_version)


def test_a_material_version_makes_earlier_consents_stale_and_lists_what_changed(
    db: Database, unit_settings: Settings
) -> None:
    with db.session() as session:
        _publish(session, "2027-01", material=False)
        _publish(session, "2027-02", material=True)
        _publish(session, "2027-03", material=False)
        assert accounts_policy.current_version(session, unit_settings) == "2027-03"
        for old in ("2027-01", unit_settings.privacy_policy_version):
            assert not accounts_policy.consent_is_current(session, unit_settings, old)
            [change] = accounts_policy.changes_since(session, unit_settings, old)
            assert change.version == "2027-02" and change.summary("en") == "Sum 2027-02"
            assert change.summary("fr-CA") == "Résumé 2027-02"
        assert accounts_policy.consent_is_current(session, unit_settings, "2027-02")
        assert accounts_policy.consent_is_current(session, unit_settings, "2027-03")


def test_versions_published_in_the_same_instant_keep_their_order(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        _publish(session, "a1")
        _publish(session, "a2")
        rows = session.exec(select(PrivacyPolicyVersion)).all()
        for row in rows:
            row.published_at = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
            session.add(row)
        session.flush()
        first, second = policy.history(session)[1], policy.history(session)[0]
        assert (first.version, second.version) == ("a1", "a2")
        assert [c.version for c in policy.material_changes_since(session, "a1")] == ["a2"]
        assert policy.material_changes_since(session, "a2") == []


@pytest.mark.parametrize(
    ("version", "fr", "en", "message"),
    [
        ("bad version", "x", "y", "Version invalide"),
        ("", "x", "y", "Version invalide"),
        ("2027-09", "", "y", "résumé des changements est requis"),
        ("2027-09", "x", " ", "résumé des changements est requis"),
        ("2027-09", "x" * 5000, "y", "trop long"),
    ],
)
def test_publish_refuses_malformed_input(db: Database, version: str, fr: str, en: str, message: str) -> None:
    with db.session() as session, pytest.raises(ConsentError) as caught:
        policy.publish(session, version=version, material=True, summary_fr=fr, summary_en=en)
    assert message in caught.value.message


def test_publish_refuses_a_version_published_before(db: Database) -> None:
    with db.session() as session:
        _publish(session, "2027-01")
    with db.session() as session, pytest.raises(ConsentError) as caught:
        _publish(session, "2027-01")
    assert caught.value.params == {"version": "2027-01"}


def test_members_review_only_after_a_material_change(db: Database, unit_settings: Settings) -> None:
    with db.session() as session:
        member = members.create_member(
            session, email="a@example.org", name="A", password_hash="x", privacy_version="2026-11"
        )
        assert policy.review_step(session, unit_settings, member) is None
        _publish(session, "2027-01", material=False)
        assert policy.review_step(session, unit_settings, member) is None
        _publish(session, "2027-02", material=True)
        assert policy.review_step(session, unit_settings, member) == "/privacy/review"
        assert [c.version for c in policy.pending_changes(session, unit_settings, member)] == ["2027-02"]
        assert policy.accept_current(session, unit_settings, member.id or 0) == "2027-02"
        assert member.privacy_accepted_at is not None
        assert member.privacy_accepted_at > dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        assert policy.review_step(session, unit_settings, member) is None
