"""OAuth/OIDC clients: creation, lookup, secret rotation, disabling and deletion.

Client secrets are 256-bit random values shown once; only their SHA-256 is stored (a slow hash
adds nothing to a random secret of that size) and they are compared in constant time.
Redirect URIs are matched exactly (``redirect_uri_allowed``), never by prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from portail.db import utcnow
from portail.oidc.models import OAuthClient

# The client authentication methods, one list for the whole provider (discovery, the endpoints,
# registration): a secret sent two ways, a signed assertion (RFC 7523), or none (public clients).
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
CONFIDENTIAL_AUTH_METHODS = (*SECRET_METHODS, "private_key_jwt")
AUTH_METHODS = (*CONFIDENTIAL_AUTH_METHODS, "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SUBJECT_TYPES = ("public", "pairwise")


class ClientError(Exception):
    """Invalid client metadata; ``field`` names the offending metadata key."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class ClientSpec:
    name: str
    redirect_uris: list[str] = field(default_factory=list)
    public: bool = False
    client_id: str | None = None
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scope: str = "openid profile email groups offline_access"
    token_endpoint_auth_method: str | None = None  # default: basic (confidential) or none (public)
    subject_type: str = "pairwise"
    trusted: bool = False
    resource_audiences: list[str] = field(default_factory=list)
    jwks: dict[str, object] | None = None
    jwks_uri: str | None = None
    allow_loopback_http: bool = True  # administrators (CLI, instances.toml) may use http://localhost


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_id() -> str:
    """A random client id that is safe on a command line and in a URL path.

    Hex rather than URL-safe base64: an id starting with ``-`` would be read as an option by
    ``portail clients delete <id>`` (and by most shells' tools).
    """
    return secrets.token_hex(12)


def check_uri(uri: str, name: str, *, allow_loopback_http: bool) -> None:
    """An absolute http(s) URI without fragment; plain http only on loopback when allowed."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or len(uri) > 1000:
        raise ClientError(f"URI invalide : {uri}", name)
    if parts.scheme == "http" and not (allow_loopback_http and parts.hostname in ("localhost", "127.0.0.1", "::1")):
        raise ClientError(f"https requis : {uri}", name)


def sector_of(redirect_uris: list[str]) -> str:
    hosts = {urlsplit(u).hostname or "" for u in redirect_uris}
    return sorted(hosts)[0] if hosts else ""


def validate(spec: ClientSpec) -> str:
    """Check a spec; returns the token endpoint auth method to store."""
    if not spec.name.strip() or len(spec.name) > 200:
        raise ClientError("Nom de client invalide", "client_name")
    grants = set(spec.grant_types)
    if not grants or not grants <= set(GRANT_TYPES):
        raise ClientError("Type d’autorisation non pris en charge", "grant_types")
    if "authorization_code" in grants and not spec.redirect_uris:
        raise ClientError("Au moins une URI de redirection est requise", "redirect_uris")
    for uri in spec.redirect_uris:
        check_uri(uri, "redirect_uris", allow_loopback_http=spec.allow_loopback_http)
    for uri in spec.post_logout_redirect_uris:
        check_uri(uri, "post_logout_redirect_uris", allow_loopback_http=spec.allow_loopback_http)
    if spec.backchannel_logout_uri:
        check_uri(spec.backchannel_logout_uri, "backchannel_logout_uri", allow_loopback_http=spec.allow_loopback_http)
    if spec.subject_type not in SUBJECT_TYPES:
        raise ClientError("Type de sujet invalide", "subject_type")
    method = spec.token_endpoint_auth_method or ("none" if spec.public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError("Méthode d’authentification non prise en charge", "token_endpoint_auth_method")
    if spec.public and method != "none":
        raise ClientError("Un client public s’authentifie avec « none »", "token_endpoint_auth_method")
    if not spec.public and method == "none":
        raise ClientError("Un client confidentiel doit s’authentifier", "token_endpoint_auth_method")
    if spec.public and "client_credentials" in grants:
        raise ClientError("Un client public ne peut utiliser client_credentials", "grant_types")
    if method == "private_key_jwt" and not (spec.jwks or spec.jwks_uri):
        raise ClientError("private_key_jwt exige jwks ou jwks_uri", "jwks")
    if spec.jwks and spec.jwks_uri:  # RFC 7591 §2
        raise ClientError("jwks et jwks_uri ne peuvent être donnés ensemble", "jwks")
    if spec.jwks_uri:
        check_uri(spec.jwks_uri, "jwks_uri", allow_loopback_http=spec.allow_loopback_http)
    if (spec.client_id is not None and not (0 < len(spec.client_id) <= 100)) or (
        spec.client_id and any(c.isspace() for c in spec.client_id)
    ):
        raise ClientError("Identifiant de client invalide", "client_id")
    return method


def create_client(db: Session, spec: ClientSpec) -> tuple[OAuthClient, str | None]:
    """Create a client; returns it and its secret in clear (``None`` for a public client), shown once."""
    method = validate(spec)
    client_id = spec.client_id or new_client_id()
    if get_client(db, client_id) is not None:
        raise ClientError(f"Le client {client_id} existe déjà", "client_id")
    secret = None if spec.public else new_secret()
    client = OAuthClient(
        client_id=client_id,
        client_secret_hash=hash_secret(secret) if secret else None,
        name=spec.name.strip(),
        redirect_uris=list(spec.redirect_uris),
        post_logout_redirect_uris=list(spec.post_logout_redirect_uris),
        backchannel_logout_uri=spec.backchannel_logout_uri,
        grant_types=list(spec.grant_types),
        scope=spec.scope,
        token_endpoint_auth_method=method,
        subject_type=spec.subject_type,
        sector_identifier=sector_of(spec.redirect_uris) or client_id,
        trusted=spec.trusted,
        resource_audiences=list(spec.resource_audiences),
        jwks=dict(spec.jwks) if spec.jwks else None,
        jwks_uri=spec.jwks_uri,
    )
    db.add(client)
    db.flush()
    return client, secret


def update_client(db: Session, client: OAuthClient, spec: ClientSpec) -> OAuthClient:
    """Replace the metadata of an existing client (its id and secret stay)."""
    method = validate(spec)
    client.name = spec.name.strip()
    client.redirect_uris = list(spec.redirect_uris)
    client.post_logout_redirect_uris = list(spec.post_logout_redirect_uris)
    client.backchannel_logout_uri = spec.backchannel_logout_uri
    client.grant_types = list(spec.grant_types)
    client.scope = spec.scope
    if not client.is_public:
        client.token_endpoint_auth_method = method
    client.subject_type = spec.subject_type
    client.trusted = spec.trusted
    client.resource_audiences = list(spec.resource_audiences)
    client.jwks = dict(spec.jwks) if spec.jwks else None
    client.jwks_uri = spec.jwks_uri
    db.add(client)
    db.flush()
    return client


# Hot-path statements are built once (building a select costs more than running it on SQLite).
_BY_CLIENT_ID = select(OAuthClient).where(OAuthClient.client_id == bindparam("client_id"))


def get_client(db: Session, client_id: str) -> OAuthClient | None:
    return db.exec(_BY_CLIENT_ID, params={"client_id": client_id}).first()


def list_clients(db: Session) -> list[OAuthClient]:
    return list(db.exec(select(OAuthClient).order_by(col(OAuthClient.id))))


def verify_secret(client: OAuthClient, secret: str, *, previous: bool = True) -> bool:
    """The client's secret, or (``previous``) the one it replaced while its grace period lasts."""
    if client.client_secret_hash is None or not secret:
        return False
    given = hash_secret(secret)
    if hmac.compare_digest(client.client_secret_hash, given):
        return True
    if not previous or client.previous_secret_hash is None or client.previous_secret_expires_at is None:
        return False
    return client.previous_secret_expires_at > utcnow() and hmac.compare_digest(client.previous_secret_hash, given)


def rotate_secret(db: Session, client: OAuthClient, grace: dt.timedelta | None = None) -> str:
    """A new secret; with ``grace``, the current one keeps working that long (else it dies at once)."""
    if client.is_public:
        raise ClientError("Un client public n’a pas de secret", "client_secret")
    secret = new_secret()
    now = utcnow()
    if grace:
        client.previous_secret_hash, client.previous_secret_expires_at = client.client_secret_hash, now + grace
    else:
        client.previous_secret_hash, client.previous_secret_expires_at = None, None
    client.client_secret_hash = hash_secret(secret)
    client.secret_rotated_at = now
    db.add(client)
    return secret


def disable_client(db: Session, client: OAuthClient) -> None:
    """Disable a client; the caller (``tokens.revoke_client_tokens``) also revokes what it holds."""
    client.disabled_at = utcnow()
    db.add(client)


def enable_client(db: Session, client: OAuthClient) -> None:
    client.disabled_at = None
    db.add(client)


def redirect_uri_allowed(client: OAuthClient, redirect_uri: str) -> bool:
    """RFC 6749 §3.1.2.3 / OIDC Core §3.1.2.1: exact, case-sensitive string comparison."""
    return redirect_uri in client.redirect_uris


def delete_client(db: Session, client: OAuthClient, *, reason: str) -> int:
    """Delete a client: revoke every token it holds, withdraw the consents given to it (recorded in
    the ledger), forget its sessions and parked requests. Returns the number of grants revoked."""
    from sqlalchemy import delete

    from portail.oidc import tokens
    from portail.oidc.models import Consent, ConsentEvent, ParkedRequest, SessionClient

    revoked = tokens.revoke_client_tokens(db, client.client_id, "client-deleted")
    now = utcnow()
    for consent in db.exec(select(Consent).where(Consent.client_id == client.client_id)):
        if consent.withdrawn_at is None:
            db.add(
                ConsentEvent(
                    member_id=consent.member_id,
                    client_id=client.client_id,
                    action="withdrawn",
                    scopes=consent.scopes,
                    policy_version=consent.policy_version,
                    at=now,
                    detail=f"client deleted: {reason}"[:2000],
                )
            )
        db.delete(consent)
    db.execute(delete(SessionClient).where(col(SessionClient.client_id) == client.client_id))  # type: ignore[call-overload]
    db.execute(delete(ParkedRequest).where(col(ParkedRequest.client_id) == client.client_id))  # type: ignore[call-overload]
    db.delete(client)
    db.flush()
    return revoked
