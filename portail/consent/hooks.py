"""What the consent package plugs into the packages below it; ``create_app`` calls ``install`` once
with the application's ``AccountExtensions`` (``portail.accounts.extensions``) and settings.

- the published privacy-policy versions become the current version that sign-up and the OpenID
  Connect consent prompt record and compare (``policy.PublishedVersions``);
- each acceptance of the terms or the policy is a ledger event (``ledger.record_acceptance``);
- logging in during the grace period cancels a deletion request (and the login page says so);
- after a material policy change, the member reviews what changed (``/privacy/review``) before going
  on — at login and on every page until they accept.
"""

from __future__ import annotations

from sqlmodel import Session

from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.consent import deletion, ledger, policy
from portail.web import N_

DELETION_CANCELLED = N_(
    "Vous vous êtes connecté : la suppression de votre compte est annulée. Votre compte est conservé."
)


def install(extensions: AccountExtensions, settings: Settings, *, review_step: bool = True) -> None:
    """Register the consent package's hooks on ``extensions``, bound to ``settings``."""

    def cancel_deletion_on_login(db: Session, member: Member, _row: LoginSession) -> str | None:
        if deletion.cancel(db, settings, member.id or 0, "login", actor_id=member.id):
            return DELETION_CANCELLED
        return None

    def review_policy_step(db: Session, member: Member) -> str | None:
        return policy.review_step(db, settings, member)

    policy.install(extensions)
    extensions.on_acceptance(ledger.record_acceptance)
    extensions.on_login(cancel_deletion_on_login)
    if review_step:
        extensions.on_login_step(review_policy_step)
