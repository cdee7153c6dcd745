"""When a stronger or a fresher authentication is needed, and how a session gets it.

- Authentication methods of a session are RFC 8176 ``amr`` values, space-separated on the session
  row: ``pwd`` (password), ``otp`` (authenticator app or recovery code), ``hwk`` (passkey or
  security key), ``user`` (the authenticator verified the person), ``mfa`` (two factors were used).
- A session is **multi-factor** when its ``amr`` has ``mfa``; ``strengthen`` adds the methods of a
  second step to a live session (a step-up) and moves its ``auth_time``.
- Sensitive changes (email, password, factors, recovery codes, account deletion) need a **fresh**
  authentication: ``auth_time`` at most ``reauth_minutes`` old; ``reauthenticated`` moves it after a
  password or passkey is given again.
- Roles that administer others (administrators, privacy officers, federation administrators, and
  hoster administrators, told by the federation package through the application's
  ``AccountExtensions.add_administering_role``) must enrol a second factor before using the pages
  that administer others (``guarded``: the prefixes ``create_app`` gives ``SecondFactorGate``;
  setting ``mfa_required_for_admins``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlmodel import Session

from portail.accounts import extensions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from portail.db import utcnow
from portail.web import N_

ADMINISTERING_ROLES = ("privacy-officer", "federation-admin")


def method_label(amr: str) -> str:
    """How a session logged in, as a French source message (translated where shown)."""
    methods = set(amr.split())
    if "hwk" in methods and "pwd" not in methods:
        return N_("Connexion par clé d’accès")
    if "hwk" in methods:
        return N_("Connexion par mot de passe + clé d’accès")
    if "otp" in methods:
        return N_("Connexion par mot de passe + code à usage unique")
    return N_("Connexion par mot de passe")


def is_mfa(amr: str) -> bool:
    return "mfa" in amr.split()


def merged_amr(first: str, second: str) -> str:
    """The methods of both steps, in order, plus ``mfa`` when they are two different factors."""
    methods = list(dict.fromkeys([*first.split(), *second.split()]))
    if "mfa" not in methods and len({"pwd", "otp", "hwk"} & set(methods)) >= 2:
        methods.append("mfa")
    return " ".join(methods)


def strengthen(db: Session, session_id: int, amr: str) -> LoginSession | None:
    """Add a second step's methods to a live session (it is now multi-factor, authenticated now)."""
    row = db.get(LoginSession, session_id)
    if row is None or row.ended_at is not None:
        return None
    row.amr = merged_amr(row.amr, amr)[:100]
    row.auth_time = utcnow()
    db.add(row)
    return row


def is_fresh(row: LoginSession, settings: Settings, now: dt.datetime | None = None) -> bool:
    return (now or utcnow()) - row.auth_time <= dt.timedelta(minutes=settings.reauth_minutes)


def reauthenticated(db: Session, session_id: int) -> None:
    row = db.get(LoginSession, session_id)
    if row is not None and row.ended_at is None:
        row.auth_time = utcnow()
        db.add(row)


def guarded(path: str, prefixes: Iterable[str]) -> bool:
    """Does ``path`` start with one of ``prefixes`` (pages that administer others; ``{name}`` stands
    for any one segment)?"""
    segments = path.split("/")
    for prefix in prefixes:
        wanted = prefix.rstrip("/").split("/")
        if len(segments) >= len(wanted) and all(
            w == s or (w.startswith("{") and w.endswith("}") and s) for w, s in zip(wanted, segments, strict=False)
        ):
            return True
    return False


def administers_others(db: Session, member: Member) -> bool:
    if member.is_admin or any(member.has_role(role) for role in ADMINISTERING_ROLES):
        return True
    return any(check(db, member) for check in list(extensions.of(db).administering_roles))
