"""What second factors a member has, the security mails that follow each change, and the
administrator's reset (``portail users mfa reset``).

A second factor is a confirmed authenticator app or at least one passkey; recovery codes only
stand in for a lost one. The first factor a member enrols gives them their ten recovery codes. A
member whose roles require a second factor (``step_up.administers_others``) cannot remove their
last one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists
from sqlmodel import Session, col, select

from portail import mail
from portail.accounts.members import AccountError, audit
from portail.accounts.mfa import recovery, step_up, totp, webauthn
from portail.accounts.mfa.models import Passkey, RecoveryCode, TotpSecret
from portail.accounts.models import Member
from portail.config import Settings
from portail.web import N_

FACTOR_ADDED = N_("Une méthode de connexion a été ajoutée à votre compte")
FACTOR_REMOVED = N_("Une méthode de connexion a été retirée de votre compte")
PASSWORD_CHANGED = N_("Le mot de passe de votre compte a été changé")
RECOVERY_USED = N_("Un code de récupération de votre compte a été utilisé")
RECOVERY_REGENERATED = N_("De nouveaux codes de récupération ont été créés pour votre compte")
NEW_DEVICE = N_("Nouvelle connexion à votre compte depuis un autre appareil")
FACTORS_RESET = N_("Les méthodes de connexion de votre compte ont été réinitialisées")


@dataclass(frozen=True)
class Factors:
    totp: TotpSecret | None
    passkeys: list[Passkey]
    recovery_remaining: int

    @property
    def any(self) -> bool:
        return self.totp is not None or bool(self.passkeys)


def of(db: Session, member_id: int) -> Factors:
    return Factors(totp.confirmed(db, member_id), webauthn.passkeys(db, member_id), recovery.remaining(db, member_id))


def enrolled(db: Session, member_id: int) -> bool:
    """One indexed query: a confirmed authenticator app or a passkey."""
    has_totp = exists().where(col(TotpSecret.member_id) == member_id, col(TotpSecret.confirmed_at).is_not(None))
    has_passkey = exists().where(col(Passkey.member_id) == member_id)
    return bool(db.exec(select(has_totp | has_passkey)).one())


def codes_for_first_factor(db: Session, member_id: int) -> list[str] | None:
    """Ten recovery codes when the member has none yet (their first factor); else None."""
    if db.exec(select(RecoveryCode.id).where(RecoveryCode.member_id == member_id)).first() is not None:
        return None
    return recovery.generate(db, member_id)


def check_removable(
    db: Session, settings: Settings, member: Member, *, removing_totp: bool, passkey_id: int | None
) -> None:
    """Refuse to remove the last second factor of a member whose roles require one."""
    if not (settings.mfa_required_for_admins and step_up.administers_others(db, member)):
        return
    current = of(db, member.id or 0)
    left_totp = current.totp is not None and not removing_totp
    left_passkeys = [p for p in current.passkeys if passkey_id is None or p.id != passkey_id]
    if not left_totp and not left_passkeys:
        raise AccountError(
            "Votre rôle exige une validation en deux étapes : ajoutez une autre méthode avant de retirer celle-ci."
        )


def notify(db: Session, settings: Settings, member: Member, what: str, detail: str = "") -> None:
    """Tell the member about a change to how their account is protected, with a link to their sessions."""
    mail.send(
        settings,
        member.email,
        "security_notice",
        member.locale,
        subject=what,
        name=member.name,
        what=what,
        detail=detail,
        sessions_url=f"{settings.issuer}/account#sessions-h",
        security_url=f"{settings.issuer}/account/security",
    )


@dataclass(frozen=True)
class FactorInfo:
    kind: str  # totp | passkey | recovery-codes
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    remaining: int | None = None


def listing(db: Session, member_id: int) -> list[FactorInfo]:
    """The member's factors, without any secret (for ``portail users mfa list``)."""
    current = of(db, member_id)
    found: list[FactorInfo] = []
    if current.totp is not None:
        found.append(
            FactorInfo("totp", "", current.totp.confirmed_at or current.totp.created_at, current.totp.last_used_at)
        )
    found += [FactorInfo("passkey", p.name, p.created_at, p.last_used_at) for p in current.passkeys]
    codes = list(db.exec(select(RecoveryCode).where(RecoveryCode.member_id == member_id)))
    if codes:
        created = min(c.created_at for c in codes)
        used = [c.used_at for c in codes if c.used_at is not None]
        found.append(
            FactorInfo(
                "recovery-codes", "", created, max(used) if used else None, sum(c.used_at is None for c in codes)
            )
        )
    return found


def reset(db: Session, settings: Settings, member: Member, reason: str, actor_id: int | None = None) -> int:
    """Remove every factor and recovery code of ``member`` (audited, member told); returns how many factors."""
    member_id = member.id or 0
    count = int(totp.remove(db, member_id)) + len(webauthn.remove(db, member_id))
    recovery.remove(db, member_id)
    audit(
        db,
        "mfa.factors_reset",
        actor_id=actor_id,
        member_id=member_id,
        subject_type="member",
        subject_id=str(member_id),
        reason=reason,
    )
    notify(db, settings, member, FACTORS_RESET)
    return count
