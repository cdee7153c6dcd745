"""Passkeys and security keys: WebAuthn Level 2 registration (§7.1) and authentication (§7.2),
verified by the ``webauthn`` package.

The relying party id is the issuer's host and the only accepted origin is the issuer's origin, so
an assertion made for another site or another RP id is refused. Every ceremony starts with a
random challenge stored here (``WebauthnChallenge``): bound to one purpose (``register``,
``login`` without a password, ``second`` factor after the password, ``reauth`` before a sensitive
change) and, except for a passwordless login, to one member; it lives ``CHALLENGE_TTL`` and is
claimed once by a conditional UPDATE, before the signature is even checked. A signature counter
that does not move forward (when the authenticator keeps one) means a cloned authenticator: the
assertion is refused and the event audited. Passkeys are discoverable credentials (resident keys)
and user verification is preferred; a passwordless login requires it.

Verifications answer ``PasskeyRefused(message)`` rather than raising, so that the claimed challenge and
the audit event are committed with the refusal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_authenticator_data
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portail.accounts.members import audit
from portail.accounts.mfa.models import Passkey, WebauthnChallenge
from portail.accounts.models import Member
from portail.db import utcnow

CHALLENGE_TTL = dt.timedelta(minutes=5)
PURPOSES = ("register", "login", "second", "reauth")
MAX_PASSKEYS = 20
MAX_CREDENTIAL_JSON = 64_000
RP_NAME = "En commun"


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    origin: str


def relying_party(issuer: str) -> RelyingParty:
    """RP id = the issuer's host; origin = the issuer's scheme, host and port."""
    parts = urlsplit(issuer)
    return RelyingParty(rp_id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True)
class PasskeyRefused:
    message: str  # French source message, translated where shown


@dataclass(frozen=True)
class Asserted:
    passkey: Passkey
    user_verified: bool


def _new_challenge(db: Session, purpose: str, member_id: int | None) -> bytes:
    now = utcnow()
    db.execute(  # type: ignore[call-overload]
        WebauthnChallenge.__table__.delete().where(col(WebauthnChallenge.expires_at) < now)  # type: ignore[attr-defined]
    )
    raw = secrets.token_bytes(32)
    db.add(
        WebauthnChallenge(
            challenge=bytes_to_base64url(raw),
            purpose=purpose,
            member_id=member_id,
            created_at=now,
            expires_at=now + CHALLENGE_TTL,
        )
    )
    return raw


def _parse(credential_json: str) -> dict[str, Any] | None:
    if not isinstance(credential_json, str) or len(credential_json) > MAX_CREDENTIAL_JSON:
        return None
    try:
        value = json.loads(credential_json)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _challenge_of(credential: dict[str, Any]) -> str | None:
    try:
        client_data = json.loads(base64url_to_bytes(str(credential["response"]["clientDataJSON"])))
        challenge = client_data["challenge"]
    except (KeyError, TypeError, ValueError):
        return None
    return challenge if isinstance(challenge, str) and 0 < len(challenge) <= 128 else None


def _claim(db: Session, credential: dict[str, Any], purpose: str, member_id: int | None) -> bytes | None:
    """Mark the challenge in ``credential`` used, if it is ours, live, unused and for this purpose/member."""
    challenge = _challenge_of(credential)
    if challenge is None:
        return None
    now = utcnow()
    conditions = [
        col(WebauthnChallenge.challenge) == challenge,
        col(WebauthnChallenge.purpose) == purpose,
        col(WebauthnChallenge.used_at).is_(None),
        col(WebauthnChallenge.expires_at) > now,
    ]
    conditions.append(
        col(WebauthnChallenge.member_id).is_(None)
        if member_id is None
        else col(WebauthnChallenge.member_id) == member_id
    )
    result = cast(
        CursorResult[Any],
        db.execute(update(WebauthnChallenge).where(*conditions).values(used_at=now)),  # type: ignore[call-overload]
    )
    return base64url_to_bytes(challenge) if result.rowcount == 1 else None


def passkeys(db: Session, member_id: int) -> list[Passkey]:
    return list(db.exec(select(Passkey).where(Passkey.member_id == member_id).order_by(col(Passkey.id))))


def _descriptors(rows: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    found = []
    for row in rows:
        transports = []
        for name in row.transports.split():
            try:
                transports.append(AuthenticatorTransport(name))
            except ValueError:
                continue
        found.append(PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id), transports=transports))
    return found


# ---------------------------------------------------------------- registration


def registration_options(db: Session, rp: RelyingParty, member: Member) -> str:
    """``PublicKeyCredentialCreationOptions`` as JSON for ``navigator.credentials.create``."""
    existing = passkeys(db, member.id or 0)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=RP_NAME,
        user_id=user_handle(member),
        user_name=member.email,
        user_display_name=member.name,
        challenge=_new_challenge(db, "register", member.id),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json(options)


def register(
    db: Session, rp: RelyingParty, member: Member, credential_json: str, name: str
) -> Passkey | PasskeyRefused:
    """Verify the attestation and keep the credential under ``name``."""
    name = " ".join(name.split())[:100]
    if not name:
        return PasskeyRefused("Donnez un nom à cette clé d’accès.")
    credential = _parse(credential_json)
    if credential is None:
        return PasskeyRefused("La réponse de votre appareil est illisible. Réessayez.")
    challenge = _claim(db, credential, "register", member.id)
    if challenge is None:
        return PasskeyRefused("Cette demande a expiré ou a déjà servi. Réessayez.")
    existing = passkeys(db, member.id or 0)
    if len(existing) >= MAX_PASSKEYS:
        return PasskeyRefused("Vous avez atteint le nombre maximal de clés d’accès.")
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id, expected_origin=rp.origin
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return PasskeyRefused("Votre appareil n’a pas pu être vérifié pour Portail. Réessayez.")
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.exec(select(Passkey.id).where(Passkey.credential_id == credential_id)).first() is not None:
        return PasskeyRefused("Cette clé d’accès est déjà enregistrée.")
    transports = credential.get("response", {}).get("transports") or []
    row = Passkey(
        member_id=member.id or 0,
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        user_handle=bytes_to_base64url(user_handle(member)),
        sign_count=verified.sign_count,
        name=name,
        transports=" ".join(t for t in transports if isinstance(t, str))[:200],
    )
    db.add(row)
    db.flush()
    return row


def user_handle(member: Member) -> bytes:
    """The WebAuthn ``user.id`` of a member: stable, random-looking, not their email nor their ``sub``."""
    return hashlib.sha256(f"portail.webauthn.user:{member.public_id}".encode()).digest()


# ---------------------------------------------------------------- authentication


def authentication_options(db: Session, rp: RelyingParty, purpose: str, member_id: int | None) -> str | None:
    """``PublicKeyCredentialRequestOptions`` as JSON; None when ``member_id`` has no passkey."""
    allow: list[PublicKeyCredentialDescriptor] = []
    if member_id is not None:
        rows = passkeys(db, member_id)
        if not rows:
            return None
        allow = _descriptors(rows)
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=_new_challenge(db, purpose, member_id),
        allow_credentials=allow,
        user_verification=(
            UserVerificationRequirement.REQUIRED if purpose == "login" else UserVerificationRequirement.PREFERRED
        ),
    )
    return options_to_json(options)


def authenticate(
    db: Session, rp: RelyingParty, purpose: str, credential_json: str, member_id: int | None
) -> Asserted | PasskeyRefused:
    """Verify an assertion: for ``member_id``'s passkeys, or (``login``) any member's discoverable one."""
    credential = _parse(credential_json)
    if credential is None:
        return PasskeyRefused("La réponse de votre appareil est illisible. Réessayez.")
    if _claim(db, credential, purpose, member_id) is None:
        return PasskeyRefused("Cette demande a expiré ou a déjà servi. Réessayez.")
    challenge = base64url_to_bytes(_challenge_of(credential) or "")
    raw_id = credential.get("rawId") if isinstance(credential.get("rawId"), str) else credential.get("id")
    row = db.exec(select(Passkey).where(Passkey.credential_id == str(raw_id)[:1400])).first()
    if row is None or (member_id is not None and row.member_id != member_id):
        return PasskeyRefused("Cette clé d’accès n’est pas enregistrée dans Portail.")
    handle = credential.get("response", {}).get("userHandle")
    if handle and row.user_handle and handle != row.user_handle:
        return PasskeyRefused("Cette clé d’accès n’est pas enregistrée dans Portail.")
    counter = _counter(credential)
    if counter is not None and (counter > 0 or row.sign_count > 0) and counter <= row.sign_count:
        audit(
            db,
            "mfa.passkey_clone_suspected",
            member_id=row.member_id,
            subject_type="passkey",
            subject_id=str(row.id),
            reason=f"sign count {counter} after {row.sign_count}",
        )
        return PasskeyRefused(
            "Cette clé d’accès semble avoir été copiée : elle est refusée. Utilisez une autre méthode."
        )
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(row.public_key),
            credential_current_sign_count=row.sign_count,
            require_user_verification=purpose == "login",
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return PasskeyRefused("Votre appareil n’a pas pu être vérifié pour Portail. Réessayez.")
    row.sign_count = verified.new_sign_count
    row.last_used_at = utcnow()
    db.add(row)
    return Asserted(row, bool(verified.user_verified))


def _counter(credential: dict[str, Any]) -> int | None:
    try:
        data = parse_authenticator_data(base64url_to_bytes(str(credential["response"]["authenticatorData"])))
    except (KeyError, TypeError, ValueError, WebAuthnException):
        return None
    return int(data.sign_count)


# ---------------------------------------------------------------- managing passkeys


def rename(db: Session, member_id: int, passkey_id: int, name: str) -> Passkey | PasskeyRefused:
    row = db.get(Passkey, passkey_id)
    if row is None or row.member_id != member_id:
        return PasskeyRefused("Cette clé d’accès n’existe pas.")
    name = " ".join(name.split())[:100]
    if not name:
        return PasskeyRefused("Donnez un nom à cette clé d’accès.")
    row.name = name
    db.add(row)
    return row


def remove(db: Session, member_id: int, passkey_id: int | None = None) -> list[Passkey]:
    rows = [r for r in passkeys(db, member_id) if passkey_id is None or r.id == passkey_id]
    for row in rows:
        db.delete(row)
    return rows
