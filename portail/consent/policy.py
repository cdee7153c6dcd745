"""Privacy-policy versions: publishing them and telling the rest of Portail which one is current.

An administrator publishes a version (``portail privacy publish`` or the admin page), marked
*material* or *minor*, with a summary of what changed in French and English. The latest published
version is what new acceptances and consents record. A consent or acceptance given under an earlier
version still holds unless a *material* version was published after it; otherwise the member reviews
the changes (their summaries) and accepts again before any other page opens, to Portail
(``review_step``: a pending step that ``PendingStepGate`` enforces on every page) and to each tool
(the OpenID Connect consent prompt reads ``portail.accounts.policy``, which ``PublishedVersions``
feeds; ``create_app`` registers it). Each acceptance is written to the consent ledger.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portail.accounts import policy as accounts_policy
from portail.accounts.extensions import AccountExtensions
from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.accounts.policy import PolicyChange
from portail.config import Settings
from portail.consent.errors import ConsentError
from portail.consent.models import PrivacyPolicyVersion
from portail.db import utcnow

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
SUMMARY_MAX = 4000


def _change(row: PrivacyPolicyVersion) -> PolicyChange:
    return PolicyChange(
        version=row.version,
        published_at=row.published_at,
        material=row.material,
        summary_fr=row.summary_fr,
        summary_en=row.summary_en,
    )


def latest(db: Session) -> PrivacyPolicyVersion | None:
    return db.exec(
        select(PrivacyPolicyVersion)
        .order_by(col(PrivacyPolicyVersion.published_at).desc(), col(PrivacyPolicyVersion.id).desc())
        .limit(1)
    ).first()


def history(db: Session, *, limit: int = 100) -> list[PolicyChange]:
    """Published versions, newest first."""
    rows = db.exec(
        select(PrivacyPolicyVersion)
        .order_by(col(PrivacyPolicyVersion.published_at).desc(), col(PrivacyPolicyVersion.id).desc())
        .limit(limit)
    )
    return [_change(row) for row in rows]


def material_changes_since(db: Session, version: str) -> list[PolicyChange]:
    """Material versions published after ``version`` (all of them when ``version`` was never published)."""
    base = db.exec(select(PrivacyPolicyVersion).where(PrivacyPolicyVersion.version == version)).first()
    query = select(PrivacyPolicyVersion).where(col(PrivacyPolicyVersion.material).is_(True))
    if base is not None:
        query = query.where(
            (col(PrivacyPolicyVersion.published_at) > base.published_at)
            | ((col(PrivacyPolicyVersion.published_at) == base.published_at) & (col(PrivacyPolicyVersion.id) > base.id))
        )
    rows = db.exec(query.order_by(col(PrivacyPolicyVersion.published_at), col(PrivacyPolicyVersion.id)))
    return [_change(row) for row in rows if row.version != version]


_CURRENT = "portail.consent.policy.current"  # this unit of work's reading (Session.info)
_versions: Any = PrivacyPolicyVersion.__table__  # type: ignore[attr-defined]
_LATEST_VERSION = (
    sa.select(_versions.c.version).order_by(_versions.c.published_at.desc(), _versions.c.id.desc()).limit(1)
)


class PublishedVersions:
    """The ``PolicySource`` that ``portail.accounts.policy`` consults (set by ``install``)."""

    def current_version(self, db: Session) -> str | None:
        # Read on every page and twice per /authorize (the login's pending step, then the consent):
        # one column in Core, not an ORM entity, and once per unit of work (``publish`` forgets it).
        if _CURRENT in db.info:
            return db.info[_CURRENT]  # type: ignore[no-any-return]
        db.flush()  # as the ORM query autoflushed: a version published in this unit of work counts
        value = db.connection().execute(_LATEST_VERSION).scalar()
        found = db.info[_CURRENT] = str(value) if value is not None else None
        return found

    def material_changes_since(self, db: Session, version: str) -> list[PolicyChange]:
        return material_changes_since(db, version)


def install(extensions: AccountExtensions) -> None:
    """Make the published versions the current ones for the application of ``extensions``."""
    extensions.set_policy_source(PublishedVersions())


def publish(
    db: Session,
    *,
    version: str,
    material: bool,
    summary_fr: str,
    summary_en: str,
    actor_id: int | None = None,
) -> PrivacyPolicyVersion:
    """Publish a new version; refuses a malformed or already published version and empty summaries."""
    version = version.strip()
    summary_fr, summary_en = summary_fr.strip(), summary_en.strip()
    if not VERSION_RE.match(version):
        raise ConsentError("Version invalide : lettres, chiffres, points, tirets (40 caractères au plus).")
    if not summary_fr or not summary_en:
        raise ConsentError("Le résumé des changements est requis en français et en anglais.")
    if len(summary_fr) > SUMMARY_MAX or len(summary_en) > SUMMARY_MAX:
        raise ConsentError("Le résumé est trop long (%(max)s caractères au plus).", max=SUMMARY_MAX)
    if db.exec(select(PrivacyPolicyVersion.id).where(PrivacyPolicyVersion.version == version)).first() is not None:
        raise ConsentError("La version %(version)s est déjà publiée.", version=version)
    previous = latest(db)
    now = utcnow()
    if previous is not None and previous.published_at >= now:
        now = previous.published_at  # keep the order even if clocks disagree; ids break the tie
    row = PrivacyPolicyVersion(
        version=version,
        published_at=now,
        material=material,
        summary_fr=summary_fr,
        summary_en=summary_en,
        published_by=actor_id,
    )
    db.add(row)
    db.info.pop(_CURRENT, None)
    try:
        db.flush()
    except IntegrityError as exc:  # published concurrently
        raise ConsentError("La version %(version)s est déjà publiée.", version=version) from exc
    audit(
        db,
        "privacy.policy_published",
        actor_id=actor_id,
        subject_type="privacy_policy",
        subject_id=version,
        reason="material" if material else "minor",
    )
    return row


# ---------------------------------------------------------------- Portail's own acceptance


def review_step(db: Session, settings: Settings, member: Member) -> str | None:
    """The pending step of a member who must accept the policy again (``accounts_policy.review_needed``):
    after a material version is published, or after the operator changed ``privacy_policy_version``."""
    return "/privacy/review" if accounts_policy.review_needed(db, settings, member.privacy_version) else None


def pending_changes(db: Session, settings: Settings, member: Member) -> list[PolicyChange]:
    """What changed materially since the version the member accepted (oldest first)."""
    if not member.privacy_version:
        return [change for change in reversed(history(db)) if change.material]
    return accounts_policy.changes_since(db, settings, member.privacy_version)


def accept_current(db: Session, settings: Settings, member_id: int) -> str:
    """Record that the member accepted the current version; returns it."""
    member = db.get(Member, member_id)
    if member is None:
        raise ConsentError("Ce compte n’existe plus.")
    version = accounts_policy.current_version(db, settings)
    renewed = bool(member.privacy_version)
    member.privacy_version = version
    member.privacy_accepted_at = utcnow()
    member.updated_at = member.privacy_accepted_at
    db.add(member)
    accounts_policy.record_acceptance(db, member_id, "privacy", version, renewed=renewed)
    audit(
        db,
        "privacy.policy_accepted",
        actor_id=member_id,
        member_id=member_id,
        subject_type="privacy_policy",
        subject_id=version,
    )
    return version
