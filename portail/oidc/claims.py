"""Scopes and claims: what each scope releases, the ``claims`` request parameter (OIDC Core §5.5),
and the claims of ID tokens (§2, §3.1.3.6) and of the userinfo answer (§5.3).

Profile claims are in the ID token as well as at userinfo, because Synapse reads them from the ID
token. ``groups`` (under the ``groups`` scope) lists the member's organizations; the federation
package narrows it to the organizations relevant to an instance through the application's
``AccountExtensions.set_groups_provider``.
Higher packages declare API scopes (no claims) on the application's ``ProviderExtensions``
(``oidc/extensions.py``); ``scopes_supported`` takes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, col, select

from portail.accounts import extensions
from portail.accounts.models import Member, Membership, Organization
from portail.oidc import subjects
from portail.oidc.models import OAuthClient

# scope → the claims it releases (OIDC Core §5.4, plus Portail's "groups")
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "preferred_username", "locale"),
    "email": ("email", "email_verified"),
    "groups": ("groups",),
    "offline_access": (),
}
MEMBER_SCOPES = frozenset(SCOPE_CLAIMS)  # scopes that need a member (not for client_credentials)
PROFILE_CLAIMS = ("name", "preferred_username", "locale", "email", "email_verified", "groups")
PROTOCOL_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash")
CLAIMS_SUPPORTED = (*PROTOCOL_CLAIMS, *PROFILE_CLAIMS)
ACR_PASSWORD = "urn:encommun:acr:password"  # noqa: S105 - an ACR name
ACR_MFA = "urn:encommun:acr:mfa"


def scopes_supported(api_scopes: Iterable[str] = ()) -> list[str]:
    """The member scopes, then an application's API scopes (``ProviderExtensions.api_scopes``)."""
    return [*SCOPE_CLAIMS, *sorted(api_scopes)]


def _default_groups(db: Session, member: Member) -> list[str]:
    rows = db.exec(
        select(Organization.slug)
        .join(Membership, col(Membership.organization_id) == col(Organization.id))
        .where(Membership.member_id == member.id, Membership.status == "active")
        .order_by(col(Organization.slug))
    )
    return list(rows)


def groups(db: Session, member: Member, client: OAuthClient) -> list[str]:
    """The ``groups`` claim: the application's provider (``AccountExtensions.set_groups_provider``; the
    federation narrows it per instance), else every organization the member is active in."""
    provider = extensions.of(db).groups_provider
    return provider(db, member, client.client_id) if provider is not None else _default_groups(db, member)


# ---------------------------------------------------------------- the claims request parameter


class ClaimsRequestError(ValueError):
    """A ``claims`` parameter that is not the JSON object of OIDC Core §5.5."""


def parse_claims_request(raw: str | None) -> dict[str, dict[str, Any]] | None:
    """Parse and check the ``claims`` parameter; unknown claims are kept (and later ignored)."""
    if raw is None or raw == "":
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ClaimsRequestError("claims is not JSON") from exc
    if not isinstance(data, dict) or not set(data) <= {"id_token", "userinfo"}:
        raise ClaimsRequestError("claims must be an object with id_token and/or userinfo")
    parsed: dict[str, dict[str, Any]] = {}
    for target, members in data.items():
        if members is None:
            continue
        if not isinstance(members, dict) or len(members) > 50:
            raise ClaimsRequestError(f"claims.{target} must be an object")
        for name, spec in members.items():
            if not isinstance(name, str) or not (spec is None or isinstance(spec, dict)):
                raise ClaimsRequestError(f"claims.{target}.{name} must be null or an object")
        parsed[target] = members
    return parsed


def requested_claims(claims_request: Mapping[str, Any] | None) -> list[str]:
    """Profile claims Portail supports that the ``claims`` parameter asks for (any target)."""
    names: set[str] = set()
    for members in (claims_request or {}).values():
        names.update(n for n in members if n in PROFILE_CLAIMS)
    return sorted(names)


def released(scope: str, claims_request: Mapping[str, Any] | None, target: str) -> set[str]:
    """Profile claims released to ``target`` (``id_token`` or ``userinfo``): those of the scopes,
    plus those the ``claims`` parameter requests for that target (essential or not)."""
    names = {c for s in scope.split() for c in SCOPE_CLAIMS.get(s, ())} - {"sub"}
    names.update(n for n in (claims_request or {}).get(target, {}) if n in PROFILE_CLAIMS)
    return names


def acr_for(amr: str) -> str:
    return ACR_MFA if "mfa" in amr.split() else ACR_PASSWORD  # RFC 8176: "mfa" = more than one factor


# ---------------------------------------------------------------- values


def profile_values(db: Session, member: Member, client: OAuthClient, names: Iterable[str]) -> dict[str, Any]:
    wanted = set(names)
    values: dict[str, Any] = {}
    if "name" in wanted:
        values["name"] = member.name
    if "preferred_username" in wanted:
        values["preferred_username"] = subjects.username_for(db, member)
    if "locale" in wanted:
        values["locale"] = member.locale
    if "email" in wanted:
        values["email"] = member.email
    if "email_verified" in wanted:
        values["email_verified"] = member.verified
    if "groups" in wanted:
        values["groups"] = groups(db, member, client)
    return values


def userinfo(
    db: Session, secret_key: str, member: Member, client: OAuthClient, scope: str, claims_request: Any
) -> dict[str, Any]:
    """The userinfo answer (OIDC Core §5.3.2): ``sub`` and the released profile claims."""
    return {
        "sub": subjects.subject_for(db, secret_key, member, client),
        **profile_values(db, member, client, released(scope, claims_request, "userinfo")),
    }
