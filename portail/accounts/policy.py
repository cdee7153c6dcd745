"""The current privacy-policy version, as every package below ``consent`` sees it.

Sign-up records the version a member accepts, and the OpenID Connect provider records the version
each consent was given under and asks again when a *material* change was published since. The
versions themselves are published by the ``consent`` package (its ``privacy_policy_version``
table), which sits above ``accounts`` and ``oidc``; it sets a ``PolicySource`` on the application's
``AccountExtensions`` (``extensions.py``) from ``create_app``. Without a source, or while no version is published, the
``privacy_policy_version`` setting is the current version and a consent under any other version is
stale.

Use ``current_version`` to record a new acceptance, ``consent_is_current`` to decide whether an
earlier one still holds, ``review_needed`` to decide whether a member must accept the policy again,
and ``changes_since`` to show what changed.

Every acceptance of Portail's own documents (the terms of use and the privacy policy, at sign-up and
each time they are accepted again) goes through ``record_acceptance``; the consent package writes it
to the member's consent ledger (``AccountExtensions.on_acceptance``), the one record both "Mes données" and the
policy history read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from portail.accounts import extensions
from portail.accounts.extensions import Document
from portail.config import Settings


@dataclass(frozen=True)
class PolicyChange:
    """One published version: what a member is shown when asked to review the policy again."""

    version: str
    published_at: dt.datetime
    material: bool
    summary_fr: str
    summary_en: str

    def summary(self, locale: str) -> str:
        return self.summary_en if locale == "en" and self.summary_en else self.summary_fr


def record_acceptance(db: Session, member_id: int, document: Document, version: str, *, renewed: bool) -> None:
    """The member accepted ``version`` of ``document`` (first time, or ``renewed`` after a change)."""
    for hook in list(extensions.of(db).acceptance):
        hook(db, member_id, document, version, renewed)


def current_version(db: Session, settings: Settings) -> str:
    """The version a member accepts today: the latest published one, else the setting."""
    source = extensions.of(db).policy_source
    if source is not None:
        published = source.current_version(db)
        if published:
            return published
    return settings.privacy_policy_version


def changes_since(db: Session, settings: Settings, version: str) -> list[PolicyChange]:
    """Material changes published after ``version`` (oldest first); empty when it still holds."""
    source = extensions.of(db).policy_source
    return [] if source is None else source.material_changes_since(db, version)


def consent_is_current(db: Session, settings: Settings, version: str) -> bool:
    """Whether an acceptance or consent given under ``version`` still holds.

    With published versions: no material change was published after ``version``. Without any: the
    version equals the ``privacy_policy_version`` setting (changing the setting counts as material).
    """
    if not version:
        return False
    source = extensions.of(db).policy_source
    if source is not None and source.current_version(db):
        return not source.material_changes_since(db, version)
    return version == settings.privacy_policy_version


def review_needed(db: Session, settings: Settings, version: str) -> bool:
    """Whether a member who accepted ``version`` (``""``: never) must accept the policy again.

    With published versions: never accepted, or a material version was published since. Without any:
    ``version`` differs from the ``privacy_policy_version`` setting (an operator changing the setting
    and restarting makes every member accept again); a member who never accepted one (created by the
    command line) is not asked until a version is published.
    """
    source = extensions.of(db).policy_source
    current = source.current_version(db) if source is not None else None
    if source is None or not current:
        return bool(version) and version != settings.privacy_policy_version
    if not version:
        return True
    # The common case costs one query (the latest version): every member page asks.
    return version != current and bool(source.material_changes_since(db, version))
