"""Changes a member makes on their security page: start and confirm an authenticator app, add,
rename and remove passkeys, remove the app, make new recovery codes.

Each change is one unit of work: refused with an ``AccountError`` (nothing saved) or done, audited
and mailed to the member. Adding a factor also makes the current session multi-factor (the member
just proved possession of it) and, for the first factor, returns the ten recovery codes to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from portail.accounts.members import AccountError, audit
from portail.accounts.mfa import factors, recovery, step_up, totp, webauthn
from portail.accounts.models import Member
from portail.config import Settings

# The changes that need a fresh authentication (step_up.is_fresh) before they are made.
SENSITIVE = frozenset({"totp-remove", "recovery-codes", "passkey-remove"})


@dataclass(frozen=True)
class Change:
    """One change asked on the security page, with the fields it needs."""

    action: str
    code: str = ""
    name: str = ""
    credential: str = ""
    passkey_id: int | None = None


@dataclass(frozen=True)
class Context:
    settings: Settings
    rp: webauthn.RelyingParty
    member: Member
    session_id: int


def _audit(db: Session, ctx: Context, action: str, subject_type: str = "member", subject_id: str = "") -> None:
    member_id = ctx.member.id
    audit(
        db,
        action,
        actor_id=member_id,
        member_id=member_id,
        subject_type=subject_type,
        subject_id=subject_id or str(member_id),
    )


def _added(db: Session, ctx: Context, amr: str, action: str) -> list[str] | None:
    step_up.strengthen(db, ctx.session_id, amr)
    _audit(db, ctx, action)
    factors.notify(db, ctx.settings, ctx.member, factors.FACTOR_ADDED)
    return factors.codes_for_first_factor(db, ctx.member.id or 0)


def _totp_start(db: Session, ctx: Context, change: Change) -> None:
    totp.start(db, ctx.settings.secret_key, ctx.member)


def _totp_confirm(db: Session, ctx: Context, change: Change) -> list[str] | None:
    totp.confirm(db, ctx.settings.secret_key, ctx.member, change.code)
    return _added(db, ctx, "otp", "mfa.totp_added")


def _totp_remove(db: Session, ctx: Context, change: Change) -> None:
    factors.check_removable(db, ctx.settings, ctx.member, removing_totp=True, passkey_id=None)
    if totp.remove(db, ctx.member.id or 0):
        _audit(db, ctx, "mfa.totp_removed")
        factors.notify(db, ctx.settings, ctx.member, factors.FACTOR_REMOVED)


def _recovery_codes(db: Session, ctx: Context, change: Change) -> list[str]:
    if not factors.enrolled(db, ctx.member.id or 0):
        raise AccountError("Ajoutez d’abord une application d’authentification ou une clé d’accès.")
    codes = recovery.generate(db, ctx.member.id or 0)
    _audit(db, ctx, "mfa.recovery_regenerated")
    factors.notify(db, ctx.settings, ctx.member, factors.RECOVERY_REGENERATED)
    return codes


def _passkey_add(db: Session, ctx: Context, change: Change) -> list[str] | None:
    result = webauthn.register(db, ctx.rp, ctx.member, change.credential, change.name)
    if isinstance(result, webauthn.PasskeyRefused):
        raise AccountError(result.message)
    return _added(db, ctx, "hwk", "mfa.passkey_added")


def _own_passkey(db: Session, ctx: Context, change: Change) -> int:
    mine = {p.id for p in webauthn.passkeys(db, ctx.member.id or 0)}
    if change.passkey_id is None or change.passkey_id not in mine:
        raise AccountError("Cette clé d’accès n’existe pas.")
    return change.passkey_id


def _passkey_rename(db: Session, ctx: Context, change: Change) -> None:
    result = webauthn.rename(db, ctx.member.id or 0, _own_passkey(db, ctx, change), change.name)
    if isinstance(result, webauthn.PasskeyRefused):
        raise AccountError(result.message)


def _passkey_remove(db: Session, ctx: Context, change: Change) -> None:
    passkey_id = _own_passkey(db, ctx, change)
    factors.check_removable(db, ctx.settings, ctx.member, removing_totp=False, passkey_id=passkey_id)
    webauthn.remove(db, ctx.member.id or 0, passkey_id)
    _audit(db, ctx, "mfa.passkey_removed", "passkey", str(passkey_id))
    factors.notify(db, ctx.settings, ctx.member, factors.FACTOR_REMOVED)


ACTIONS: dict[str, Callable[[Session, Context, Change], list[str] | None]] = {
    "totp-start": _totp_start,
    "totp-confirm": _totp_confirm,
    "totp-remove": _totp_remove,
    "recovery-codes": _recovery_codes,
    "passkey-add": _passkey_add,
    "passkey-rename": _passkey_rename,
    "passkey-remove": _passkey_remove,
}


def apply(
    db: Session, settings: Settings, rp: webauthn.RelyingParty, member_id: int, session_id: int, change: Change
) -> list[str] | None:
    """Make ``change``; returns recovery codes to show once, when it produced some."""
    member = db.get(Member, member_id)
    if member is None or change.action not in ACTIONS:
        raise AccountError("Cette demande est invalide.")
    return ACTIONS[change.action](db, Context(settings, rp, member, session_id), change)
