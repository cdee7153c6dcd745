"""The current privacy-policy version, as every package below ``consent`` sees it.

Sign-up records the version a member accepts, and the OpenID Connect provider records the version
each consent was given under and asks again when a *material* change was published since. The
versions themselves are published by the ``consent`` package (its ``privacy_policy_version``
table), which sits above ``accounts`` and ``oidc``; it registers a ``PolicySource`` here from
``create_app`` (``set_source``). Without a source, or while no version is published, the
``privacy_policy_version`` setting is the current version and a consent under any other version is
stale.

Use ``current_version`` to record a new acceptance, ``consent_is_current`` to decide whether an
earlier one still holds, and ``changes_since`` to show what changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

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


class PolicySource(Protocol):
    """What the package publishing policy versions provides (``portail.consent.policy``)."""

    def current_version(self, db: Session) -> str | None: ...

    def material_changes_since(self, db: Session, version: str) -> list[PolicyChange]: ...


_source: list[PolicySource] = []


def set_source(source: PolicySource | None) -> None:
    """Register (or, with ``None``, remove) the source of published versions."""
    _source.clear()
    if source is not None:
        _source.append(source)


def current_version(db: Session, settings: Settings) -> str:
    """The version a member accepts today: the latest published one, else the setting."""
    if _source:
        published = _source[0].current_version(db)
        if published:
            return published
    return settings.privacy_policy_version


def changes_since(db: Session, settings: Settings, version: str) -> list[PolicyChange]:
    """Material changes published after ``version`` (oldest first); empty when it still holds."""
    if not _source:
        return []
    return _source[0].material_changes_since(db, version)


def consent_is_current(db: Session, settings: Settings, version: str) -> bool:
    """Whether an acceptance or consent given under ``version`` still holds.

    With published versions: no material change was published after ``version``. Without any: the
    version equals the ``privacy_policy_version`` setting (changing the setting counts as material).
    """
    if not version:
        return False
    if _source and _source[0].current_version(db):
        return not _source[0].material_changes_since(db, version)
    return version == settings.privacy_policy_version
