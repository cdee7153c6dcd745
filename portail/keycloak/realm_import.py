"""``portail keycloak import``: a realm's users become Portail members.

Users are read through the Admin REST API (``GET /admin/realms/{realm}/users``, python-keycloak's
``KeycloakAdmin.get_users``) page by page, each with its groups; a user listed twice by shifting
pages is kept once, and when fewer users come back than ``users/count`` announced, nothing is
imported (a realm changing under the import is imported again later, never half). Every user is
read before anything is written. Each one becomes a ``Candidate`` of ``accounts.newcomers`` (email,
first and last names, username, email verified, enabled, creation time) whose password stays in
Keycloak (``bridge.password_marker``); groups named like an organization's slug become memberships,
others are ignored. Users without an email address are reported, not imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

from portail.accounts import newcomers
from portail.accounts.members import AccountError, clean_name, normalize_email
from portail.accounts.newcomers import Candidate, Refusal, Report
from portail.db import Database
from portail.keycloak.bridge import password_marker
from portail.keycloak.errors import BridgeError, explain
from portail.web import N_

PAGE_SIZE = 100


def admin_client(server_url: str, realm: str, client_id: str, client_secret: str, timeout: int) -> KeycloakAdmin:
    """An Admin API client authenticated as a confidential client's service account (client credentials)."""
    return KeycloakAdmin(
        server_url=server_url,
        realm_name=realm,
        client_id=client_id,
        client_secret_key=client_secret,
        timeout=timeout,
    )


def read_users(admin: KeycloakAdmin) -> list[dict[str, Any]]:
    """Every user of the realm with a ``groups`` list of group names, page by page. Raises ``KeycloakError``
    or ``BridgeError`` (an answer that is not a list of users, or fewer users than announced)."""
    announced = admin.users_count()
    if not isinstance(announced, int):
        raise BridgeError("Keycloak a donné une réponse inattendue.")
    found: dict[str, dict[str, Any]] = {}
    first = 0
    while True:
        page = admin.get_users({"first": first, "max": PAGE_SIZE, "briefRepresentation": False})
        if not isinstance(page, list) or not all(isinstance(u, dict) and isinstance(u.get("id"), str) for u in page):
            raise BridgeError("Keycloak a donné une réponse inattendue.")
        fresh = [user for user in page if user["id"] not in found]
        found.update((user["id"], user) for user in fresh)
        if len(page) < PAGE_SIZE or not fresh:
            break
        first += PAGE_SIZE
    if len(found) < announced:
        raise BridgeError(
            "Keycloak a annoncé %(announced)s comptes mais en a listé %(read)s : rien n’a été importé, réessayez.",
            announced=announced,
            read=len(found),
        )
    for user in found.values():
        groups = admin.get_user_groups(user["id"])
        user["groups"] = [str(group.get("name", "")) for group in groups if isinstance(group, dict)]
    return list(found.values())


def candidates(users: list[dict[str, Any]]) -> Iterator[Candidate | Refusal]:
    """Each user as a member to bring in (``line`` is the user's position in the realm's listing)."""
    for position, user in enumerate(users, start=1):
        username = str(user.get("username") or "")
        raw_email = str(user.get("email") or "")
        if not raw_email:
            yield Refusal(position, username, N_("Compte Keycloak sans adresse courriel."))
            continue
        if not username or len(password_marker(username)) > 255:
            yield Refusal(position, raw_email, N_("Nom d’utilisateur Keycloak invalide."))
            continue
        try:
            email = normalize_email(raw_email)
            full = f"{user.get('firstName') or ''} {user.get('lastName') or ''}".strip()
            name = clean_name(full or username)
        except AccountError as exc:
            yield Refusal(position, raw_email, exc.message, exc.params)
            continue
        created = user.get("createdTimestamp")
        yield Candidate(
            line=position,
            email=email,
            name=name,
            password_hash=password_marker(username),
            username=username,
            verified=bool(user.get("emailVerified")),
            enabled=user.get("enabled", True) is not False,
            created_at=dt.datetime.fromtimestamp(created / 1000, dt.UTC) if isinstance(created, int) else None,
            organizations=tuple(
                slug for group in user.get("groups", []) if newcomers.SLUG_RE.match(slug := group.strip().lower())
            ),
        )


def import_realm(database: Database, admin: KeycloakAdmin, server_url: str, realm: str, *, dry_run: bool) -> Report:
    """Read the whole realm, then bring its users in (one transaction per batch)."""
    try:
        users = read_users(admin)
    except KeycloakError as exc:
        raise explain(exc, server_url, realm) from exc
    return newcomers.apply_all(
        database, candidates(users), Report(dry_run=dry_run), refuse_unknown_organizations=False, source="keycloak"
    )
