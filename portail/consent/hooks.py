"""What the consent package plugs into the packages below it; ``create_app`` calls ``install`` once.

- ``portail.accounts.policy``: the published privacy-policy versions become the current version that
  sign-up and the OpenID Connect consent prompt record and compare (``policy.PublishedVersions``).
- ``portail.accounts.sessions.on_login``: logging in during the grace period cancels a deletion request.
- ``portail.accounts.sessions.on_login_step``: after a material policy change, the member reviews what
  changed (``/privacy/review``) before going on.
"""

from __future__ import annotations

from sqlmodel import Session

from portail.accounts import sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.consent import deletion, policy

_settings: list[Settings] = []


def cancel_deletion_on_login(db: Session, member: Member, _row: LoginSession) -> None:
    if _settings:
        deletion.cancel(db, _settings[0], member.id or 0, "login", actor_id=member.id)


def install(settings: Settings, *, review_step: bool = True) -> None:
    _settings[:] = [settings]
    policy.install()
    sessions.on_login(cancel_deletion_on_login)
    if review_step:
        sessions.on_login_step(policy.review_step)
