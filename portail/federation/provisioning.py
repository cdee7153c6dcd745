"""Instance → OpenID Connect client: the redirect and back-channel logout URIs each software uses,
and the client's life (created at approval, re-keyed on demand, disabled with its tokens revoked on
suspension or retirement, enabled again on reactivation).

Derived URIs (see ``shared/reference/integrations.md`` §1.1, §3.1, §5):

- Nextcloud ``user_oidc``: redirect ``{base}/apps/user_oidc/code`` and
  ``{base}/index.php/apps/user_oidc/code``; back-channel logout
  ``{base}/index.php/apps/user_oidc/backchannel-logout/{provider_identifier}`` (the ``index.php`` form
  works with and without pretty URLs; integrations.md §10); post-logout ``{base}/`` (given to ``occ``
  as ``--postlogouturi``).
- Synapse: redirect ``{base}/_synapse/client/oidc/callback``; back-channel logout
  ``{base}/_synapse/client/oidc/backchannel_logout`` (Synapse has no RP-initiated logout).
- Discourse (``discourse-openid-connect``, Omniauth name ``oidc``): redirect
  ``{base}/auth/oidc/callback``; post-logout ``{base}/``; no back-channel logout.
- Any other software: the URIs the hoster enters, each on the same origin as the base URL.

Grants and scopes (``access``): every client gets ``authorization_code`` and ``refresh_token`` with
the member scopes; an instance that pushes notifications (``Instance.push_notifications``, default
by software: Passerelles, Praxis, Discourse and other software push, Nextcloud and Matrix are pulled
by the hub) also gets ``client_credentials`` and the ``notifications:push`` scope
(``docs/notifications-api.md``). ``instances.toml`` (``push_notifications``), the hoster's node form
and the JSON API say it explicitly; ``portail instances sync`` brings existing clients up to date.

How the tool names Portail (``Instance.provider_identifier``, default ``encommun``): Nextcloud's
``user_oidc`` provider identifier (in its back-channel URI and ``occ`` command) and Synapse's
``idp_id`` (in the snippet and the "Lier mon compte Matrix" redirect, ``synapse_idp``).

A Discourse instance's notification webhook is signed with a secret Portail derives for that
instance from its own ``secret_key`` (``discourse_webhook_secret``): shown in the Discourse snippet,
checked by the notification hub (``notifications/webhooks.py``); it changes only with ``secret_key``.

Suspension and retirement (``disable``): the client is disabled and its tokens revoked, every live
session that used it gets a back-channel logout (``oidc.backchannel.logout_client``), and the
listeners registered with ``on_withdrawn`` (the notification hub tells the instance's members) run in
the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.config import Settings
from portail.db import Database
from portail.federation.models import Instance
from portail.federation.rules import FederationError
from portail.oidc import backchannel, clients, tokens
from portail.oidc.clients import ClientError, ClientSpec
from portail.oidc.models import OAuthClient

log = logging.getLogger("portail.federation")

DERIVED_SOFTWARE = ("nextcloud", "matrix", "discourse")
PUSHING_SOFTWARE = ("passerelles", "praxis", "discourse", "other")  # default of push_notifications
PUSH_SCOPE = "notifications:push"
MEMBER_GRANTS = ["authorization_code", "refresh_token"]
MEMBER_SCOPE = "openid profile email groups offline_access"
DEFAULT_PROVIDER_ID = "encommun"
WithdrawnListener = Callable[[Session, Settings, Instance, str, str], object]
_LISTENERS = "portail.federation.withdrawn-listeners"  # key in ``Database.session_info``
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


def pushes_by_default(software: str) -> bool:
    return software in PUSHING_SOFTWARE


def push_setting(value: object, software: str) -> bool:
    """``push_notifications`` as given (a boolean, or ``"true"``/``"false"`` from a form), else the
    software's default; raises ``FederationError`` on anything else."""
    if value is None or value == "":
        return pushes_by_default(software)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise FederationError("« push_notifications » doit valoir true ou false.")


def access(instance: Instance) -> tuple[list[str], str]:
    """The grant types and scope of an instance's client."""
    if instance.push_notifications:
        return [*MEMBER_GRANTS, "client_credentials"], f"{MEMBER_SCOPE} {PUSH_SCOPE}"
    return list(MEMBER_GRANTS), MEMBER_SCOPE


def discourse_webhook_secret(secret_key: str, instance: Instance) -> str:
    """The HMAC-SHA256 key of this Discourse instance's notification webhook (64 hex characters)."""
    label = f"portail.discourse-webhook:{instance.id}".encode()
    return hmac.new(secret_key.encode(), label, hashlib.sha256).hexdigest()


def synapse_idp(instance: Instance) -> tuple[str, str]:
    """Synapse's ``idp_id`` for Portail on this node, and the id Synapse exposes it under
    (``synapse/config/oidc.py`` prefixes ``oidc-`` to every ``idp_id`` but ``oidc`` itself)."""
    idp_id = instance.provider_identifier or DEFAULT_PROVIDER_ID
    return idp_id, idp_id if idp_id == "oidc" else f"oidc-{idp_id}"


def check_provider_identifier(value: str) -> str:
    value = value.strip() or DEFAULT_PROVIDER_ID
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
            f"{base}/index.php/apps/user_oidc/backchannel-logout/{pid}",
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


def spec_for(settings: Settings, instance: Instance, *, administrator: bool = False) -> ClientSpec:
    """The client an instance needs; ``administrator`` (instances.toml) allows http on loopback."""
    grant_types, scope = access(instance)
    return ClientSpec(
        name=instance.name,
        client_id=instance.client_id or instance.slug,
        redirect_uris=list(instance.redirect_uris),
        post_logout_redirect_uris=list(instance.post_logout_redirect_uris),
        backchannel_logout_uri=instance.backchannel_logout_uri,
        grant_types=grant_types,
        scope=scope,
        subject_type=str(instance.extra.get("subject_type") or settings.default_subject_type),
        trusted=instance.trusted,
        allow_loopback_http=administrator or settings.allow_http_instances,
        token_endpoint_auth_method="private_key_jwt" if instance.extra.get("jwks_uri") else None,
        jwks_uri=str(instance.extra["jwks_uri"]) if instance.extra.get("jwks_uri") else None,
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


def rotate(db: Session, instance: Instance, grace: dt.timedelta | None = None) -> str:
    client = client_of(db, instance)
    if client is None:
        raise FederationError("Cette instance n’a pas encore de client OpenID Connect.", status=409, code="conflict")
    return clients.rotate_secret(db, client, grace)


def set_secret(db: Session, instance: Instance, secret: str) -> bool:
    """Give the client a secret chosen by the operator (``client_secret_env``); True when it changed."""
    client = client_of(db, instance)
    if client is None or client.is_public:
        return False
    if clients.verify_secret(client, secret, previous=False):
        return False
    client.client_secret_hash = clients.hash_secret(secret)
    db.add(client)
    return True


def upgrade_access(db: Session, instance: Instance) -> bool:
    """Give an existing client the grants and scope its instance needs now; True when they changed."""
    client = client_of(db, instance)
    if client is None:
        return False
    grant_types, scope = access(instance)
    if client.grant_types == grant_types and client.scope == scope:
        return False
    client.grant_types, client.scope = grant_types, scope
    db.add(client)
    return True


def on_withdrawn(database: Database, listener: WithdrawnListener) -> None:
    """Register ``listener(db, settings, instance, action, reason)``, called when an instance is
    suspended or retired (``action``) through a unit of work of ``database``, in the transaction that
    disables its client (kept in ``database.session_info``: one application's listeners only)."""
    found = database.session_info.get(_LISTENERS)
    listeners: list[WithdrawnListener] = found if isinstance(found, list) else []
    name = (listener.__module__, listener.__qualname__)
    listeners[:] = [f for f in listeners if (f.__module__, f.__qualname__) != name]
    listeners.append(listener)
    database.session_info[_LISTENERS] = listeners


def disable(db: Session, settings: Settings, instance: Instance, action: str, reason: str) -> None:
    """Suspend or retire (``action``) an instance's client: every live session that used it is
    logged out of it (back-channel logout, queued before the client is disabled), the client is
    disabled and its tokens revoked, then the ``on_withdrawn`` listeners run."""
    client = client_of(db, instance)
    if client is None:
        return
    backchannel.logout_client(db, client.client_id)
    clients.disable_client(db, client)
    tokens.revoke_client_tokens(db, client.client_id, f"instance {action}: {reason}"[:200])
    found = db.info.get(_LISTENERS)
    for listener in list(found if isinstance(found, list) else ()):
        listener(db, settings, instance, action, reason)


def enable(db: Session, instance: Instance) -> None:
    client = client_of(db, instance)
    if client is not None:
        clients.enable_client(db, client)
