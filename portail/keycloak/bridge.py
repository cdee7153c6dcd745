"""Lazy password migration of members imported from a Keycloak realm.

Keycloak's Admin API never reveals password hashes, so ``portail keycloak import`` stores
``{KEYCLOAK}<username>`` as the member's hash. At that member's first Portail login, ``check_password``
asks the realm's token endpoint once (OAuth 2.0 resource-owner password grant, RFC 6749 §4.3,
through python-keycloak's ``KeycloakOpenID.a_token``) with a dedicated confidential client that has
only "direct access grants" on; when Keycloak says yes, the login stores an argon2id hash in place
of the marker (``Passwords.needs_rehash``) and Keycloak is never asked about that member again.

Keycloak answering ``invalid_grant`` is a wrong password (the login counts a failure as usual).
Anything else — unreachable, too slow (``keycloak_timeout_seconds``), a 5xx, the bridge's client
refused — raises ``CheckUnavailable``: the member is told to try later or choose a new password, and
no failure is counted against them. The Keycloak session the grant opened is closed at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from dataclasses import dataclass

from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from portail.accounts.passwords import CheckUnavailable, Passwords
from portail.config import Settings

log = logging.getLogger(__name__)

MARKER = "{KEYCLOAK}"


def password_marker(username: str) -> str:
    """What a member imported from Keycloak has as password hash until their first login."""
    return MARKER + username


@dataclass(frozen=True)
class BridgeRealm:
    server_url: str
    realm: str
    client_id: str
    client_secret: str
    timeout_seconds: float


def bridge_realm(settings: Settings) -> BridgeRealm | None:
    """The realm configured for lazy verification (``PORTAIL_KEYCLOAK_*``), or None when the bridge is off."""
    if not settings.keycloak_server_url or not settings.keycloak_realm or not settings.keycloak_client_id:
        return None
    return BridgeRealm(
        server_url=settings.keycloak_server_url,
        realm=settings.keycloak_realm,
        client_id=settings.keycloak_client_id,
        client_secret=settings.keycloak_client_secret,
        timeout_seconds=settings.keycloak_timeout_seconds,
    )


def error_code(exc: KeycloakError) -> str:
    """The OAuth ``error`` of a Keycloak answer, or ``""``."""
    try:
        body = json.loads(exc.response_body or b"{}")
    except (ValueError, TypeError):
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


async def check_password(realm: BridgeRealm, username: str, password: str) -> bool:
    """True when the realm accepts ``username``/``password``; ``CheckUnavailable`` when it cannot say."""
    client = KeycloakOpenID(
        server_url=realm.server_url,
        realm_name=realm.realm,
        client_id=realm.client_id,
        client_secret_key=realm.client_secret,
        timeout=math.ceil(realm.timeout_seconds),
    )
    try:
        async with asyncio.timeout(realm.timeout_seconds + 1):
            tokens = await client.a_token(username=username, password=password, scope="openid")
            await _close_session(client, tokens)
    except KeycloakConnectionError as exc:
        log.warning("Keycloak bridge: %s unreachable (%s)", realm.server_url, exc.__cause__ or exc)
        raise CheckUnavailable from exc
    except TimeoutError as exc:
        log.warning("Keycloak bridge: %s did not answer in time", realm.server_url)
        raise CheckUnavailable from exc
    except KeycloakError as exc:
        if error_code(exc) == "invalid_grant":
            return False
        log.warning("Keycloak bridge: realm %s answered %s", realm.realm, exc.response_code)
        raise CheckUnavailable from exc
    finally:
        await client.connection.aclose()
    return True


async def _close_session(client: KeycloakOpenID, tokens: object) -> None:
    """End the Keycloak session the password grant opened (best effort: the check already succeeded)."""
    refresh = tokens.get("refresh_token") if isinstance(tokens, dict) else None
    if refresh:
        try:
            await client.a_logout(refresh)
        except KeycloakError:
            log.info("Keycloak bridge: the session opened by a password check could not be closed")


def install(passwords: Passwords, settings: Settings) -> None:
    """Let logins check ``{KEYCLOAK}`` hashes against the configured realm (nothing when the bridge is off)."""
    realm = bridge_realm(settings)
    if realm is not None:
        passwords.register_remote(MARKER, functools.partial(check_password, realm))
