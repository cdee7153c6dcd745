"""Instance → OpenID Connect client: the redirect and back-channel logout URIs each software uses,
and the client's life (created at approval, re-keyed on demand, disabled with its tokens revoked on
suspension or retirement, enabled again on reactivation).

Derived URIs (see ``shared/reference/integrations.md`` §1.1, §3.1, §5):

- Nextcloud ``user_oidc``: redirect ``{base}/apps/user_oidc/code`` and
  ``{base}/index.php/apps/user_oidc/code``; back-channel logout
  ``{base}/apps/user_oidc/backchannel-logout/{provider_identifier}``; post-logout ``{base}/`` (given
  to ``occ`` as ``--postlogouturi``).
- Synapse: redirect ``{base}/_synapse/client/oidc/callback``; back-channel logout
  ``{base}/_synapse/client/oidc/backchannel_logout`` (Synapse has no RP-initiated logout).
- Discourse (``discourse-openid-connect``, Omniauth name ``oidc``): redirect
  ``{base}/auth/oidc/callback``; post-logout ``{base}/``; no back-channel logout.
- Any other software: the URIs the hoster enters, each on the same origin as the base URL.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.config import Settings
from portail.federation.models import Instance
from portail.federation.rules import FederationError
from portail.oidc import clients, tokens
from portail.oidc.clients import ClientError, ClientSpec
from portail.oidc.models import OAuthClient

log = logging.getLogger("portail.federation")

DERIVED_SOFTWARE = ("nextcloud", "matrix", "discourse")
PROVIDER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass
class Uris:
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def same_origin(uri: str, base_url: str) -> bool:
    try:
        return origin(uri) == origin(base_url)
    except ValueError:
        return False


def check_provider_identifier(value: str) -> str:
    value = value.strip() or "encommun"
    if len(value) > 80 or not set(value) <= PROVIDER_ID_CHARS:
        raise FederationError("Identifiant de fournisseur invalide : lettres, chiffres, « - », « _ » ou « . ».")
    return value


def derive(
    software: str,
    base_url: str,
    *,
    provider_identifier: str = "encommun",
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None,
) -> Uris:
    """The client URIs for ``software`` at ``base_url``; entered URIs must share the base URL's origin."""
    base = base_url.rstrip("/")
    if software == "nextcloud":
        pid = check_provider_identifier(provider_identifier)
        return Uris(
            [f"{base}/apps/user_oidc/code", f"{base}/index.php/apps/user_oidc/code"],
            [f"{base}/"],
            f"{base}/apps/user_oidc/backchannel-logout/{pid}",
        )
    if software == "matrix":
        return Uris([f"{base}/_synapse/client/oidc/callback"], [], f"{base}/_synapse/client/oidc/backchannel_logout")
    if software == "discourse":
        return Uris([f"{base}/auth/oidc/callback"], [f"{base}/"], None)
    given = [u.strip() for u in (redirect_uris or []) if u.strip()]
    logouts = [u.strip() for u in (post_logout_redirect_uris or []) if u.strip()]
    if not given:
        raise FederationError("Indiquez au moins une URI de redirection pour ce logiciel.")
    for uri in [*given, *logouts, *([backchannel_logout_uri] if backchannel_logout_uri else [])]:
        if not same_origin(uri, base) or urlsplit(uri).fragment:
            raise FederationError(
                "L’URI %(uri)s doit être sur la même origine que l’adresse de base (%(base)s), sans fragment.",
                uri=uri[:300],
                base=base,
            )
    return Uris(given, logouts, backchannel_logout_uri or None)


INSTANCE_API_SCOPES = "notifications:push"  # what an instance may ask with client_credentials


def spec_for(settings: Settings, instance: Instance, *, administrator: bool = False) -> ClientSpec:
    """The client an instance needs; ``administrator`` (instances.toml) allows http on loopback."""
    return ClientSpec(
        name=instance.name,
        client_id=instance.client_id or instance.slug,
        redirect_uris=list(instance.redirect_uris),
        post_logout_redirect_uris=list(instance.post_logout_redirect_uris),
        backchannel_logout_uri=instance.backchannel_logout_uri,
        subject_type=str(instance.extra.get("subject_type") or settings.default_subject_type),
        trusted=instance.trusted,
        allow_loopback_http=administrator or settings.allow_http_instances,
        # client_credentials with scope notifications:push: how an instance pushes notifications
        # (docs/notifications-api.md); an instance's client is always confidential.
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope=f"{ClientSpec.scope} {INSTANCE_API_SCOPES}",
    )


def hoster_clients(db: Session, client_ids: set[str]) -> set[str]:
    """Among ``client_ids``, the clients of nodes registered by hosters (not from ``instances.toml``):
    their endpoints are the hoster's, so back-channel logout reaches them through the outbound guard
    (registered with ``backchannel.guard_clients_found_by`` at startup)."""
    if not client_ids:
        return set()
    rows = db.exec(
        select(Instance.client_id).where(col(Instance.client_id).in_(sorted(client_ids)), Instance.source != "file")
    )
    return {client_id for client_id in rows if client_id}


def client_of(db: Session, instance: Instance) -> OAuthClient | None:
    return clients.get_client(db, instance.client_id) if instance.client_id else None


def provision(db: Session, settings: Settings, instance: Instance, *, administrator: bool = False) -> str | None:
    """Create the instance's client, or bring an existing one up to date; returns a new secret once."""
    spec = spec_for(settings, instance, administrator=administrator)
    try:
        existing = clients.get_client(db, spec.client_id or "")
        if existing is not None and instance.client_id is None and not administrator:
            spec.client_id = f"{instance.slug}-{secrets.token_hex(3)}"  # never take over another client
            existing = None
        if existing is not None:
            clients.update_client(db, existing, spec)
            instance.client_id = existing.client_id
            db.add(instance)
            return None
        client, secret = clients.create_client(db, spec)
    except ClientError as exc:
        raise FederationError("Client OpenID Connect refusé : %(detail)s", detail=exc.message) from exc
    instance.client_id = client.client_id
    db.add(instance)
    return secret


def rotate(db: Session, instance: Instance) -> str:
    client = client_of(db, instance)
    if client is None:
        raise FederationError("Cette instance n’a pas encore de client OpenID Connect.", status=409, code="conflict")
    return clients.rotate_secret(db, client)


def set_secret(db: Session, instance: Instance, secret: str) -> bool:
    """Give the client a secret chosen by the operator (``client_secret_env``); True when it changed."""
    client = client_of(db, instance)
    if client is None or client.is_public:
        return False
    if clients.verify_secret(client, secret):
        return False
    client.client_secret_hash = clients.hash_secret(secret)
    db.add(client)
    return True


def disable(db: Session, instance: Instance, reason: str) -> None:
    """Disable the client and revoke its tokens: logins through it are refused from now on."""
    client = client_of(db, instance)
    if client is None:
        return
    clients.disable_client(db, client)
    tokens.revoke_client_tokens(db, client.client_id, reason)


def enable(db: Session, instance: Instance) -> None:
    client = client_of(db, instance)
    if client is not None:
        clients.enable_client(db, client)
