"""What the consent package plugs into the packages below it; ``create_app`` calls ``install`` once.

- ``portail.accounts.policy``: the published privacy-policy versions become the current version that
  sign-up and the OpenID Connect consent prompt record and compare (``policy.PublishedVersions``).
- ``portail.accounts.policy.on_acceptance``: each acceptance of the terms or the policy is a ledger event.
- ``portail.accounts.sessions.on_login``: logging in during the grace period cancels a deletion request
  (and the login page says so).
- ``portail.accounts.sessions.on_login_step``: after a material policy change, the member reviews what
  changed (``/privacy/review``) before going on — at login and on every page until they accept.
"""

from __future__ import annotations

from sqlmodel import Session

from portail.accounts import policy as accounts_policy
from portail.accounts import sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.consent import deletion, ledger, policy
from portail.web import N_

_settings: list[Settings] = []


def cancel_deletion_on_login(db: Session, member: Member, _row: LoginSession) -> str | None:
    if _settings and deletion.cancel(db, _settings[0], member.id or 0, "login", actor_id=member.id):
        return N_("Vous vous êtes connecté : la suppression de votre compte est annulée. Votre compte est conservé.")
    return None


def review_policy_step(db: Session, member: Member) -> str | None:
    return policy.review_step(db, _settings[0], member) if _settings else None


def install(settings: Settings, *, review_step: bool = True) -> None:
    _settings[:] = [settings]
    policy.install()
    accounts_policy.on_acceptance(ledger.record_acceptance)
    sessions.on_login(cancel_deletion_on_login)
    if review_step:
        sessions.on_login_step(review_policy_step)
