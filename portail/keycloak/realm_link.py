"""``portail keycloak link-realm``: Portail becomes the upstream OpenID Connect identity provider of a
Keycloak realm a hoster keeps running.

In the realm, through the Admin REST API (python-keycloak's ``create_idp``/``update_idp``/
``delete_idp`` and ``get_idp_mappers``/``add_mapper_to_idp``/``update_mapper_in_idp``), an identity
provider of type ``oidc`` under the alias ``encommun``: Portail's discovery URL and endpoints, the
client id and secret of the instance's Portail client, PKCE (S256), back-channel logout, sync mode
``FORCE`` (each login refreshes the user from Portail), and mappers for ``email``, ``name`` (into
``firstName``, Keycloak having no full-name attribute) and ``groups`` (the member's organization
slugs, into the multivalued attribute ``encommun_groups``). Run twice, it changes nothing; ``plan``
lists the changes without making them; ``unlink`` removes the provider and its mappers.

The instance (``instances.toml``) must be confidential, list the realm's broker endpoint
``{server}/realms/{realm}/broker/encommun/endpoint`` among its redirect URIs (its back-channel logout
URI is the realm's ``…/protocol/openid-connect/logout/backchannel-logout``, where Keycloak takes
logout tokens from its identity providers), and its secret must be
given (its ``client_secret_env``, or ``--instance-secret-env``): Portail stores only a hash of it,
and checks the one given against it before sending it to Keycloak. Keycloak answers a provider's
secret masked, so a secret changed later is sent again only with ``--unlink`` then a new link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError
from sqlmodel import Session, select
from starlette.routing import NoMatchFound, Router

from portail.config import Settings
from portail.federation import provisioning
from portail.federation.models import Instance
from portail.keycloak.errors import BridgeError, explain
from portail.oidc import clients, discovery
from portail.oidc import routes as oidc_routes

ALIAS = "encommun"


@dataclass(frozen=True)
class PortailClient:
    client_id: str
    client_secret: str


def broker_endpoint(server_url: str, realm: str) -> str:
    return f"{server_url.rstrip('/')}/realms/{realm}/broker/{ALIAS}/endpoint"


def instance_client(db: Session, slug: str, secret: str, server_url: str, realm: str) -> PortailClient:
    """The instance's confidential client, checked: the realm's broker endpoint is one of its redirect
    URIs and ``secret`` is its secret."""
    instance = db.exec(select(Instance).where(Instance.slug == slug)).first()
    if instance is None:
        raise BridgeError("Instance inconnue : %(slug)s.", slug=slug)
    client = provisioning.client_of(db, instance)
    if client is None or client.is_public:
        raise BridgeError("L’instance %(slug)s n’a pas de client OpenID Connect confidentiel.", slug=slug)
    endpoint = broker_endpoint(server_url, realm)
    if endpoint not in client.redirect_uris:
        raise BridgeError(
            "Ajoutez %(uri)s aux redirect_uris de l’instance %(slug)s (instances.toml).", uri=endpoint, slug=slug
        )
    if not clients.verify_secret(client, secret):
        raise BridgeError("Ce secret n’est pas celui du client de l’instance %(slug)s.", slug=slug)
    return PortailClient(client.client_id, secret)


def secret_env_of(db: Session, slug: str) -> str:
    """The environment variable holding the instance's secret (its ``client_secret_env`` in instances.toml)."""
    instance = db.exec(select(Instance).where(Instance.slug == slug)).first()
    name = str((instance.extra or {}).get("client_secret_env") or "") if instance else ""
    if not name:
        raise BridgeError(
            "Donnez le secret du client de l’instance %(slug)s avec --instance-secret-env "
            "(ou client_secret_env dans instances.toml).",
            slug=slug,
        )
    return name


def portail_endpoints(settings: Settings) -> dict[str, str]:
    """Portail's discovery metadata, computed as ``/.well-known/openid-configuration`` serves it."""
    router = Router(oidc_routes.routes)
    paths = {}
    for key, name in discovery.ENDPOINTS.items():
        try:
            paths[key] = str(router.url_path_for(name))
        except NoMatchFound:
            continue
    return discovery.metadata(settings, paths)


def identity_provider(settings: Settings, client: PortailClient) -> dict[str, Any]:
    """The IdentityProviderRepresentation of Portail in the realm."""
    meta = portail_endpoints(settings)
    return {
        "alias": ALIAS,
        "displayName": "En commun",
        "providerId": "oidc",
        "enabled": True,
        "trustEmail": True,
        "storeToken": False,
        "linkOnly": False,
        "firstBrokerLoginFlowAlias": "first broker login",
        "config": {
            "issuer": meta["issuer"],
            "metadataDescriptorUrl": f"{settings.issuer}/.well-known/openid-configuration",
            "authorizationUrl": meta["authorization_endpoint"],
            "tokenUrl": meta["token_endpoint"],
            "userInfoUrl": meta["userinfo_endpoint"],
            "jwksUrl": meta["jwks_uri"],
            "logoutUrl": meta["end_session_endpoint"],
            "clientId": client.client_id,
            "clientSecret": client.client_secret,
            "clientAuthMethod": "client_secret_basic",
            "defaultScope": "openid email profile groups",
            "pkceEnabled": "true",
            "pkceMethod": "S256",
            "backchannelSupported": "true",
            "validateSignature": "true",
            "useJwksUrl": "true",
            "syncMode": "FORCE",
        },
    }


def mappers() -> list[dict[str, Any]]:
    """The IdentityProviderMapperRepresentations: Portail's claims into the realm's user attributes."""

    def attribute(name: str, claim: str, target: str) -> dict[str, Any]:
        return {
            "name": name,
            "identityProviderAlias": ALIAS,
            "identityProviderMapper": "oidc-user-attribute-idp-mapper",
            "config": {"syncMode": "INHERIT", "claim": claim, "user.attribute": target},
        }

    return [
        attribute("encommun-email", "email", "email"),
        attribute("encommun-name", "name", "firstName"),
        attribute("encommun-groups", "groups", "encommun_groups"),
    ]


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when a field Portail sets has another value in Keycloak (the masked secret is not compared)."""
    for key, value in wanted.items():
        if key == "config":
            config = current.get("config") or {}
            if any(config.get(k) != v for k, v in value.items() if k != "clientSecret"):
                return True
        elif current.get(key) != value:
            return True
    return False


def link(admin: KeycloakAdmin, provider: dict[str, Any], *, dry_run: bool) -> list[str]:
    """Create or update the provider and its mappers; returns the changes (made unless ``dry_run``)."""
    changes: list[str] = []
    current = _current(admin)
    if current is None:
        changes.append(f"identity provider {ALIAS}: create")
        if not dry_run:
            admin.create_idp(provider)
    elif _differs(current, provider):
        changes.append(f"identity provider {ALIAS}: update")
        if not dry_run:
            admin.update_idp(ALIAS, provider)
    existing = {m.get("name"): m for m in admin.get_idp_mappers(ALIAS)} if current is not None else {}
    for mapper in mappers():
        found = existing.get(mapper["name"])
        if found is None:
            changes.append(f"mapper {mapper['name']}: create")
            if not dry_run:
                admin.add_mapper_to_idp(ALIAS, mapper)
        elif _differs(found, mapper):
            changes.append(f"mapper {mapper['name']}: update")
            if not dry_run:
                admin.update_mapper_in_idp(ALIAS, str(found["id"]), {**mapper, "id": found["id"]})
    return changes


def unlink(admin: KeycloakAdmin, *, dry_run: bool) -> list[str]:
    """Remove the provider (Keycloak removes its mappers with it)."""
    if _current(admin) is None:
        return []
    if not dry_run:
        admin.delete_idp(ALIAS)
    return [f"identity provider {ALIAS}: delete"]


def _current(admin: KeycloakAdmin) -> dict[str, Any] | None:
    try:
        found = admin.get_idp(ALIAS)
    except KeycloakError as exc:
        if exc.response_code == 404 and b"Realm" not in (exc.response_body or b""):
            return None
        raise
    return found if isinstance(found, dict) else None


def run(
    admin: KeycloakAdmin, provider: dict[str, Any] | None, server_url: str, realm: str, *, dry_run: bool
) -> list[str]:
    """``link`` (``provider`` given) or ``unlink`` (None), with Keycloak's failures explained."""
    try:
        return link(admin, provider, dry_run=dry_run) if provider else unlink(admin, dry_run=dry_run)
    except KeycloakError as exc:
        raise explain(exc, server_url, realm) from exc
