"""Bearer credentials of the JSON API (``/api/v1/…``): personal API tokens and hosters' clients.

Two kinds of bearer token are accepted (RFC 6750 §2.1, ``Authorization: Bearer …``):

- **Personal API tokens** (``pat_…``) that a member creates on ``/account/api-tokens``: named,
  scoped, expiring (at most ``api_token_max_days``), shown once, stored as their SHA-256, revocable.
  They act as the member, with the member's current roles.
- **Access tokens of a hoster's own client** obtained with the ``client_credentials`` grant at the
  provider's token endpoint (verified by ``portail.oidc.tokens.verify_access_token``); they act for
  that hoster only.

Scopes: ``federation:read``, ``federation:write`` (act as a hoster or organization admin) and
``federation:admin`` (federation decisions; the member must also be a federation administrator).
Other packages protecting their own ``/api/v1`` paths call ``authenticate`` with their scope and
register the scope with ``openapi.add_scope``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation import hosters
from portail.federation.models import ApiToken
from portail.federation.rules import Actor, FederationError, is_federation_admin, not_found
from portail.oidc import tokens
from portail.web import N_

TOKEN_PREFIX = "pat_"  # noqa: S105 - a prefix, not a secret
SCOPES: dict[str, str] = {
    "federation:read": N_("Lire le registre (instances, hébergeurs)"),
    "federation:write": N_("Agir pour vos hébergeurs et organisations (inscrire, vérifier, lier, renouveler)"),
    "federation:admin": N_("Décisions de la fédération (approuver, suspendre, retirer) — administrateurs seulement"),
}
TOUCH_EVERY = dt.timedelta(minutes=5)


class BearerError(Exception):
    """RFC 6750 §3.1: ``invalid_request`` / ``invalid_token`` (401), ``insufficient_scope`` (403)."""

    def __init__(self, code: str, description: str, status: int = 401) -> None:
        super().__init__(description)
        self.code = code
        self.description = description  # English ASCII: an API error
        self.status = status


@dataclass(frozen=True)
class Principal:
    actor: Actor
    scopes: frozenset[str]
    kind: str  # personal | client
    member: Member | None = None


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    db: Session, settings: Settings, member: Member, name: str, scopes: list[str], days: int
) -> tuple[ApiToken, str]:
    """Create a personal token; returns it and its value in clear (shown once)."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise FederationError("Donnez un nom au jeton (100 caractères au plus).")
    chosen = sorted(set(scopes))
    if not chosen or not set(chosen) <= set(SCOPES):
        raise FederationError("Choisissez au moins une permission.")
    if "federation:admin" in chosen and not is_federation_admin(member):
        raise FederationError("La permission d’administration est réservée aux administrateurs de la fédération.")
    if not 1 <= days <= settings.api_token_max_days:
        raise FederationError("Durée invalide : de 1 à %(max)s jours.", max=settings.api_token_max_days)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        member_id=member.id or 0,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:12],
        scopes=" ".join(chosen),
        expires_at=utcnow() + dt.timedelta(days=days),
    )
    db.add(token)
    db.flush()
    audit(
        db,
        "api_token.created",
        actor_id=member.id,
        member_id=member.id,
        subject_type="api_token",
        subject_id=str(token.id),
        reason=f"{name} [{token.scopes}] {days}d",
    )
    return token, raw


def list_tokens(db: Session, member_id: int) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.member_id == member_id).order_by(col(ApiToken.created_at).desc())
    return list(db.exec(query.limit(200)))


def revoke_token(db: Session, member_id: int, token_id: int) -> ApiToken:
    token = db.get(ApiToken, token_id)
    if token is None or token.member_id != member_id:
        raise not_found()
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.add(token)
        audit(
            db,
            "api_token.revoked",
            actor_id=member_id,
            member_id=member_id,
            subject_type="api_token",
            subject_id=str(token.id),
        )
    return token


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _personal(db: Session, raw: str, ip_address: str) -> Principal:
    token = db.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(raw))).first()
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and _aware(token.expires_at) <= now):
        raise BearerError("invalid_token", "The token is unknown, expired or revoked.")
    member = db.get(Member, token.member_id)
    if member is None or not member.active:
        raise BearerError("invalid_token", "The token's owner is disabled.")
    if token.last_used_at is None or now - _aware(token.last_used_at) > TOUCH_EVERY:
        token.last_used_at = now
        db.add(token)
    scopes = frozenset(token.scopes.split())
    if not is_federation_admin(member):
        scopes -= {"federation:admin"}
    actor = Actor(member_id=member.id, federation_admin="federation:admin" in scopes, ip_address=ip_address)
    return Principal(actor=actor, scopes=scopes, kind="personal", member=member)


def _client(db: Session, settings: Settings, raw: str, ip_address: str) -> Principal:
    try:
        claims = tokens.verify_access_token(db, settings, raw)
    except tokens.InvalidToken as exc:
        raise BearerError("invalid_token", exc.description) from exc
    client_id = str(claims.get("client_id") or claims.get("azp") or "")
    hoster = hosters.by_client_id(db, client_id) if client_id else None
    if hoster is None or hoster.status != "active":
        raise BearerError("invalid_token", "This client is not an active hoster's API client.")
    scopes = frozenset(str(claims.get("scope", "")).split()) - {"federation:admin"}
    actor = Actor(member_id=None, hoster_client=hoster.id, ip_address=ip_address)
    return Principal(actor=actor, scopes=scopes, kind="client")


def authenticate(
    db: Session, settings: Settings, authorization: str | None, required_scope: str | None, ip_address: str = ""
) -> Principal:
    """Resolve an ``Authorization`` header to a principal holding ``required_scope``."""
    scheme, _, raw = (authorization or "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise BearerError("invalid_request", "A bearer token is required (Authorization: Bearer ...).")
    principal = (
        _personal(db, raw, ip_address) if raw.startswith(TOKEN_PREFIX) else _client(db, settings, raw, ip_address)
    )
    if required_scope and required_scope not in principal.scopes:
        raise BearerError("insufficient_scope", f"This call needs the {required_scope} scope.", 403)
    return principal
