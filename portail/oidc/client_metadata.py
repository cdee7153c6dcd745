"""Client metadata of dynamic registration: RFC 7591 §2 in, RFC 7591 §3.2.1 / RFC 7592 §3 out.

``spec_from_metadata`` turns a hoster's JSON into a ``ClientSpec`` (raising ``MetadataError`` with
the RFC 7591 §3.2.2 error code), ``register`` / ``replace`` / ``delete`` apply it, and
``metadata_of`` renders a client back. Hoster-supplied URIs must be https; plain http is accepted
only on loopback and only when ``allow_http_instances`` is set (tests). Unknown metadata is ignored
(§2: "the authorization server MUST ignore any client metadata sent by the client that it does not
understand"); metadata Portail understands but cannot honour is refused with
``invalid_client_metadata``. Registration access tokens (RFC 7592 §1.1) are random, stored as
SHA-256 and compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from portail.config import Settings
from portail.oidc import claims, clients
from portail.oidc.clients import ClientError, ClientSpec
from portail.oidc.models import OAuthClient

SIGNING_ALGS = ("RS256", "ES256")
# Metadata kept as given (echoed back) once validated. ``account_events_uri``: where the tool receives
# account events (RFC 8417 SETs, read by ``portail.consent.purge``; docs/account-events.md).
ECHOED_STRINGS = (
    "software_id",
    "software_version",
    "tos_uri",
    "policy_uri",
    "id_token_signed_response_alg",
    "account_events_uri",
)
URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri", "initiate_login_uri", "account_events_uri")
READ_ONLY = ("registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at")


class MetadataError(Exception):
    """RFC 7591 §3.2.2: ``invalid_redirect_uri`` or ``invalid_client_metadata`` (ASCII description)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Registered:
    client: OAuthClient
    client_secret: str | None
    registration_access_token: str | None


def _strings(metadata: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = metadata.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 20:
        raise MetadataError("invalid_client_metadata", f"{name} must be an array of strings")
    return list(dict.fromkeys(value))


def _string(metadata: dict[str, Any], name: str, max_length: int = 1000) -> str | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise MetadataError("invalid_client_metadata", f"{name} must be a string")
    return value


def spec_from_metadata(metadata: object, settings: Settings) -> tuple[ClientSpec, dict[str, Any]]:
    """Validate RFC 7591 metadata; returns the spec and the metadata to keep in ``extra_metadata``.

    A client registers itself with OpenID Connect scopes only: the API scopes (``federation:*``,
    ``notifications:push``) belong to the clients the federation provisions for hosters and
    instances, and a self-registered client may neither hold nor ask members for them."""
    if not isinstance(metadata, dict):
        raise MetadataError("invalid_client_metadata", "the body must be a JSON object")
    loopback = settings.allow_http_instances
    redirect_uris = _strings(metadata, "redirect_uris", [])
    grant_types = _strings(metadata, "grant_types", ["authorization_code"])
    response_types = _strings(metadata, "response_types", ["code"] if "authorization_code" in grant_types else [])
    if set(response_types) - {"code"}:
        raise MetadataError("invalid_client_metadata", "only the code response type is supported")
    if ("code" in response_types) != ("authorization_code" in grant_types):
        raise MetadataError("invalid_client_metadata", "response_types and grant_types are inconsistent")
    for uri in redirect_uris:
        try:
            clients.check_uri(uri, "redirect_uris", allow_loopback_http=loopback)
        except ClientError as exc:
            raise MetadataError("invalid_redirect_uri", f"redirect_uri not allowed: {uri[:200]}") from exc
    method = _string(metadata, "token_endpoint_auth_method", 40) or "client_secret_basic"
    scope = _string(metadata, "scope") or " ".join(claims.SCOPE_CLAIMS)
    unknown = set(scope.split()) - set(claims.SCOPE_CLAIMS)
    if unknown or "openid" not in scope.split():
        raise MetadataError("invalid_client_metadata", "scope must contain openid and only supported scopes")
    subject_type = _string(metadata, "subject_type", 10) or settings.default_subject_type
    alg = _string(metadata, "id_token_signed_response_alg", 10)
    if alg is not None and alg not in SIGNING_ALGS:
        raise MetadataError("invalid_client_metadata", "id_token_signed_response_alg must be RS256 or ES256")
    if metadata.get("sector_identifier_uri") is not None:
        raise MetadataError("invalid_client_metadata", "sector_identifier_uri is not supported")
    for name in URI_FIELDS:
        given = _string(metadata, name)
        if given is not None:
            try:
                clients.check_uri(given, name, allow_loopback_http=loopback)
            except ClientError as exc:
                raise MetadataError("invalid_client_metadata", f"{name} must be an https URI") from exc
    jwks = metadata.get("jwks")
    if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
        raise MetadataError("invalid_client_metadata", "jwks must be a JWK Set")
    if jwks is not None and metadata.get("jwks_uri") is not None:  # RFC 7591 §2: "MUST NOT both be present"
        raise MetadataError("invalid_client_metadata", "jwks and jwks_uri must not both be present")
    session_required = metadata.get("backchannel_logout_session_required", True)
    if not isinstance(session_required, bool):
        raise MetadataError("invalid_client_metadata", "backchannel_logout_session_required must be a boolean")
    spec = ClientSpec(
        name=_string(metadata, "client_name", 200) or "",
        redirect_uris=redirect_uris,
        public=method == "none",
        post_logout_redirect_uris=_strings(metadata, "post_logout_redirect_uris", []),
        backchannel_logout_uri=_string(metadata, "backchannel_logout_uri"),
        grant_types=grant_types,
        scope=scope,
        token_endpoint_auth_method=method,
        subject_type=subject_type,
        jwks=jwks,
        jwks_uri=_string(metadata, "jwks_uri"),
        allow_loopback_http=loopback,
    )
    if not spec.name.strip():
        spec.name = (urlsplit(redirect_uris[0]).hostname or "" if redirect_uris else "") or "Client"
    try:
        clients.validate(spec)
    except ClientError as exc:
        error = "invalid_redirect_uri" if exc.field == "redirect_uris" else "invalid_client_metadata"
        raise MetadataError(error, f"invalid {exc.field or 'metadata'}") from exc
    extra: dict[str, Any] = {k: metadata[k] for k in ECHOED_STRINGS if isinstance(metadata.get(k), str)}
    extra["backchannel_logout_session_required"] = session_required
    contacts = _strings(metadata, "contacts", [])
    extra["contacts"] = contacts
    extra["client_uri"] = _string(metadata, "client_uri")
    extra["logo_uri"] = _string(metadata, "logo_uri")
    if "default_acr_values" in metadata:  # OIDC Registration §2; ACR_MFA makes every login of the tool MFA
        acr_values = _strings(metadata, "default_acr_values", [])
        if not set(acr_values) <= {claims.ACR_PASSWORD, claims.ACR_MFA}:
            raise MetadataError("invalid_client_metadata", "default_acr_values has an unsupported value")
        extra["default_acr_values"] = acr_values
    return spec, extra


def _apply_extra(client: OAuthClient, extra: dict[str, Any]) -> None:
    client.contacts = list(extra.pop("contacts", []))
    client.client_uri = extra.pop("client_uri", None)
    client.logo_uri = extra.pop("logo_uri", None)
    client.backchannel_logout_session_required = bool(extra.pop("backchannel_logout_session_required", True))
    client.extra_metadata = extra


def new_registration_token(client: OAuthClient) -> str:
    token = secrets.token_urlsafe(32)
    client.registration_access_token_hash = clients.hash_secret(token)
    return token


def register(db: Session, metadata: object, settings: Settings) -> Registered:
    """RFC 7591 §3.1: create the client and its registration access token."""
    spec, extra = spec_from_metadata(metadata, settings)
    client, secret = clients.create_client(db, spec)
    _apply_extra(client, extra)
    client.registered_dynamically = True
    token = new_registration_token(client)
    db.add(client)
    db.flush()
    return Registered(client, secret, token)


def authorized_client(db: Session, client_id: str, token: str) -> OAuthClient | None:
    """RFC 7592 §2: the active dynamically registered client whose registration access token this is."""
    client = clients.get_client(db, client_id)
    if client is None or not client.active or not client.registration_access_token_hash or not token:
        return None
    if not hmac.compare_digest(client.registration_access_token_hash, clients.hash_secret(token)):
        return None
    return client


def replace(db: Session, client: OAuthClient, metadata: object, settings: Settings) -> Registered:
    """RFC 7592 §2.2: replace every metadata value (omitted ones take their defaults)."""
    if not isinstance(metadata, dict):
        raise MetadataError("invalid_client_metadata", "the body must be a JSON object")
    if metadata.get("client_id") != client.client_id:
        raise MetadataError("invalid_client_metadata", "client_id must be the registered client_id")
    if any(name in metadata for name in READ_ONLY):
        raise MetadataError("invalid_client_metadata", "registration fields may not be sent")
    secret = metadata.get("client_secret")
    if secret is not None and not clients.verify_secret(client, str(secret)):
        raise MetadataError("invalid_client_metadata", "client_secret does not match")
    spec, extra = spec_from_metadata(metadata, settings)
    if spec.public != client.is_public:
        raise MetadataError("invalid_client_metadata", "token_endpoint_auth_method cannot change client type")
    clients.update_client(db, client, spec)  # jwks and jwks_uri included
    _apply_extra(client, extra)
    db.add(client)
    db.flush()
    return Registered(client, None, None)


def metadata_of(client: OAuthClient, issuer: str, registered: Registered | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client information response."""
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "subject_type": client.subject_type,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "registration_client_uri": f"{issuer}/register/{client.client_id}",
    }
    optional = {
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "client_uri": client.client_uri,
        "logo_uri": client.logo_uri,
        "jwks_uri": client.jwks_uri,
        "jwks": client.jwks,
    }
    data.update({k: v for k, v in optional.items() if v})
    if client.contacts:
        data["contacts"] = list(client.contacts)
    data.update(client.extra_metadata or {})
    if not client.is_public:
        data["client_secret_expires_at"] = 0
    if registered is not None:
        if registered.client_secret is not None:
            data["client_secret"] = registered.client_secret
        if registered.registration_access_token is not None:
            data["registration_access_token"] = registered.registration_access_token
    return data
