"""Account flows that send mail: sign-up and verification, password reset, email change,
password and profile changes. Each takes typed values and a DB session, never a request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from portail import mail
from portail.accounts import links, policy, sessions
from portail.accounts.members import (
    AccountError,
    FieldErrors,
    audit,
    clean_name,
    create_member,
    email_key,
    email_taken,
    get_by_email,
    normalize_email,
    touch,
)
from portail.accounts.mfa import factors
from portail.accounts.models import Member
from portail.accounts.passwords import password_problem
from portail.config import Settings
from portail.db import utcnow
from portail.web import N_


@dataclass(frozen=True)
class SignUp:
    name: str
    email: str
    password: str
    accept_terms: bool
    accept_privacy: bool
    locale: str


def check_password(password: str, settings: Settings) -> None:
    problem = password_problem(password, settings)
    if problem:
        raise AccountError(problem, min=settings.password_min_length, max=settings.password_max_length)


def validate_sign_up(form: SignUp, settings: Settings) -> str:
    """Check every field before anything is written; returns the normalized email.

    Raises ``FieldErrors`` naming every refused field at once, so the form can show each error at its field.
    """
    errors: dict[str, AccountError] = {}
    email = ""
    checks: list[tuple[str, Callable[[], object]]] = [
        ("name", lambda: clean_name(form.name)),
        ("email", lambda: normalize_email(form.email)),
        ("password", lambda: check_password(form.password, settings)),
    ]
    for name, check in checks:
        try:
            result = check()
        except AccountError as exc:
            errors[name] = exc
        else:
            email = str(result) if name == "email" else email
    if not form.accept_terms:
        errors["accept_terms"] = AccountError("Acceptez les conditions d’utilisation pour créer un compte.")
    if not form.accept_privacy:
        errors["accept_privacy"] = AccountError("Acceptez la politique de confidentialité pour créer un compte.")
    if errors:
        raise FieldErrors(errors)
    return email


def sign_up(
    db: Session, settings: Settings, form: SignUp, password_hash: str, base_url: str, *, send_mail: bool = True
) -> Member | None:
    """Create the member and send the verification mail (unless the mail limits said no: ``send_mail``).

    When the address already has an account, nothing is created and that account's owner is told
    by mail instead, so that the page never reveals whether an address is registered. The acceptance
    of the terms and of the privacy policy is recorded with their versions (``create_member``).
    """
    email = validate_sign_up(form, settings)
    existing = get_by_email(db, email)
    if existing is not None:
        if not send_mail:
            return None
        mail.send(
            settings,
            existing.email,
            "already_registered",
            existing.locale,
            subject=N_("Quelqu’un a tenté de créer un compte avec votre adresse"),
            name=existing.name,
            login_url=f"{base_url}/login",
            reset_url=f"{base_url}/password/forgot",
        )
        return None
    member = create_member(
        db,
        email=email,
        name=form.name,
        password_hash=password_hash,
        locale=form.locale,
        terms_version=settings.terms_version,
        privacy_version=policy.current_version(db, settings),
    )
    if send_mail:
        send_verification(db, settings, member, base_url)
    return member


def send_verification(db: Session, settings: Settings, member: Member, base_url: str) -> None:
    token = links.issue(db, settings.secret_key, member, "verify", dt.timedelta(hours=settings.verification_link_hours))
    mail.send(
        settings,
        member.email,
        "verify_email",
        member.locale,
        subject=N_("Confirmez votre adresse courriel"),
        name=member.name,
        link=f"{base_url}/verify?token={token}",
        hours=settings.verification_link_hours,
    )


def correct_unverified_email(
    db: Session, settings: Settings, member_id: int, new_email: str, base_url: str, *, send_mail: bool
) -> None:
    """An unverified member corrects a mistyped address: it is replaced at once (it was never proved)
    and the verification link goes to the new one; links sent to the old one stop working.

    An address that belongs to another account is left alone, silently (the page never reveals who
    has an account).
    """
    member = db.get(Member, member_id)
    if member is None or member.verified:
        raise AccountError("Votre adresse est déjà confirmée.")
    email = normalize_email(new_email)
    if email_key(email) != member.email_key:
        if email_taken(db, email, except_member=member.id):
            return
        member.email = email
        member.email_key = email_key(email)
        touch(member)
        db.add(member)
        audit(
            db,
            "member.email_corrected",
            actor_id=member.id,
            member_id=member.id,
            subject_type="member",
            subject_id=str(member.id),
        )
    links.void(db, member.id or 0, "verify")
    if send_mail:
        send_verification(db, settings, member, base_url)


def verify_email(db: Session, settings: Settings, token: str) -> Member:
    try:
        row = links.consume(db, settings.secret_key, "verify", token)
    except links.LinkError as exc:
        # An old or replaced link of an address confirmed since: say it is confirmed, not that it failed.
        if exc.reason in (links.USED, links.SUPERSEDED, "expired") and _verified_by(db, settings, token):
            raise links.LinkError("confirmed", "verify") from exc
        raise
    member = db.get(Member, row.member_id)
    if member is None:
        raise links.LinkError("invalid", "verify")
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()
        touch(member)
        db.add(member)
        audit(db, "member.email_verified", member_id=member.id, subject_type="member", subject_id=str(member.id))
    return member


def _verified_by(db: Session, settings: Settings, token: str) -> bool:
    """Whether the member a verification link was sent to has a confirmed address now."""
    row = links.lookup(db, settings.secret_key, "verify", token)
    member = db.get(Member, row.member_id) if row else None
    return bool(member and member.email_verified_at)


def request_reset(db: Session, settings: Settings, email: str, base_url: str) -> None:
    """Send a reset link if the address has an account; silent otherwise."""
    member = get_by_email(db, email)
    if member is None or not member.active:
        return
    token = links.issue(db, settings.secret_key, member, "reset", dt.timedelta(minutes=settings.reset_link_minutes))
    mail.send(
        settings,
        member.email,
        "reset_password",
        member.locale,
        subject=N_("Réinitialisez votre mot de passe"),
        name=member.name,
        link=f"{base_url}/password/reset?token={token}",
        minutes=settings.reset_link_minutes,
    )


def reset_password(db: Session, settings: Settings, token: str, new_hash: str) -> Member:
    """Set the new password and end every session of the member (they are logged out everywhere)."""
    row = links.consume(db, settings.secret_key, "reset", token)
    member = db.get(Member, row.member_id)
    if member is None or not member.active:
        raise links.LinkError("invalid", "reset")
    member.password_hash = new_hash
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()  # the reset link proved the address
    touch(member)
    db.add(member)
    sessions.end_member_sessions(db, member.id or 0, "password-reset")
    audit(db, "member.password_reset", member_id=member.id, subject_type="member", subject_id=str(member.id))
    factors.notify(db, settings, member, factors.PASSWORD_CHANGED)
    return member


def change_password(db: Session, member: Member, new_hash: str, keep_session_id: int | None) -> None:
    member.password_hash = new_hash
    touch(member)
    db.add(member)
    sessions.end_member_sessions(db, member.id or 0, "password-changed", keep_session_id=keep_session_id)
    audit(
        db,
        "member.password_changed",
        actor_id=member.id,
        member_id=member.id,
        subject_type="member",
        subject_id=str(member.id),
    )


def change_profile(db: Session, member: Member, *, name: str, locale: str) -> None:
    member.name = clean_name(name)
    if locale in ("fr-CA", "en"):
        member.locale = locale
    touch(member)
    db.add(member)


def request_email_change(db: Session, settings: Settings, member: Member, new_email: str, base_url: str) -> None:
    """Send a confirmation link to the new address; the old one keeps working until it is used."""
    email = normalize_email(new_email)
    if email_key(email) == member.email_key:
        raise AccountError("C’est déjà votre adresse.")
    if email_taken(db, email):
        # Do not reveal that the address belongs to someone: behave as if the mail was sent.
        return
    token = links.issue(
        db,
        settings.secret_key,
        member,
        "email-change",
        dt.timedelta(hours=settings.verification_link_hours),
        new_email=email,
    )
    mail.send(
        settings,
        email,
        "confirm_email_change",
        member.locale,
        subject=N_("Confirmez votre nouvelle adresse courriel"),
        name=member.name,
        link=f"{base_url}/account/email/confirm?token={token}",
        hours=settings.verification_link_hours,
    )


def confirm_email_change(db: Session, settings: Settings, token: str) -> Member:
    row = links.consume(db, settings.secret_key, "email-change", token)
    member = db.get(Member, row.member_id)
    if member is None or row.new_email is None:
        raise links.LinkError("invalid", "email-change")
    if email_taken(db, row.new_email, except_member=member.id):
        raise AccountError("Cette adresse est déjà utilisée par un autre compte.")
    old_email = member.email
    member.email = row.new_email
    member.email_key = email_key(row.new_email)
    member.email_verified_at = utcnow()
    touch(member)
    db.add(member)
    audit(
        db,
        "member.email_changed",
        actor_id=member.id,
        member_id=member.id,
        subject_type="member",
        subject_id=str(member.id),
    )
    mail.send(
        settings,
        old_email,
        "email_changed",
        member.locale,
        subject=N_("Votre adresse courriel a été changée"),
        name=member.name,
        new_email=row.new_email,
    )
    return member


def disable_member(db: Session, member: Member, actor_id: int | None = None, reason: str = "") -> None:
    member.disabled_at = utcnow()
    touch(member)
    db.add(member)
    sessions.end_member_sessions(db, member.id or 0, "disabled")
    audit(
        db,
        "member.disabled",
        actor_id=actor_id,
        member_id=member.id,
        subject_type="member",
        subject_id=str(member.id),
        reason=reason,
    )
