"""What an authorization request needs before a code can be issued (OIDC Core §3.1.2.3-4):
a login, a confirmed email, or the member's consent — or nothing.

- Login when there is no session, when ``prompt`` has ``login`` or ``select_account`` (treated as
  login: one account per browser), when ``max_age`` has passed since the session's
  ``auth_time``. A request parked for a login records ``login_after``; on resume, an
  authentication at or after it satisfies every one of these (so ``max_age=0`` cannot loop).
- A member whose email is not confirmed is asked to confirm it.
- A second factor when the session has none and the request asks for ``claims.ACR_MFA`` (in
  ``acr_values`` or as the ``acr`` of the ``claims`` parameter), the client's registered
  ``default_acr_values`` hold it, or the client is listed in the ``mfa_required_clients`` setting.
- A member with a pending step (a privacy policy changed materially since they accepted it:
  ``Login.pending_step``) takes it first: no code is issued to any tool before.
- Consent when this client lacks a scope or claim under the current privacy-policy version, or
  when ``prompt`` has ``consent``. A trusted client skips the page; its consent is recorded as
  implicit.
- A client may be closed to this member: higher packages add access rules to the application's
  ``ProviderExtensions`` (``add_access_rule``; the federation's members-only instances); a refusal is a page saying
  why (or ``access_denied`` with ``prompt=none``), before any consent.
- With ``prompt=none`` nothing may be shown: the answer is ``login_required``,
  ``interaction_required`` or ``consent_required`` instead (§3.1.2.6).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from portail.accounts.current import Login
from portail.accounts.mfa import step_up
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import claims, consents, extensions
from portail.oidc.authorization_request import AuthzRequest
from portail.oidc.models import OAuthClient, ParkedRequest


def refusal(db: Session, member: Member, client: OAuthClient) -> str | None:
    """The first refusal of the application's access rules (``ProviderExtensions.access_rules``), if any."""
    for rule in list(extensions.of(db).access_rules):
        message = rule(db, member, client)
        if message:
            return message
    return None


@dataclass(frozen=True)
class Step:
    kind: Literal["login", "verify", "mfa", "step", "consent", "issue", "error", "refuse"]
    error: str = ""
    description: str = ""


def needs_login(req: AuthzRequest, login: Login | None, parked: ParkedRequest | None, now: dt.datetime) -> bool:
    if login is None:
        return True
    auth_time = login.session.auth_time
    if parked is not None and parked.login_after is not None:
        return auth_time < parked.login_after  # the member logged in after the request: done
    if parked is None and req.prompt & {"login", "select_account"}:
        return True
    return req.max_age is not None and (now - auth_time).total_seconds() > req.max_age


def needs_mfa(settings: Settings, req: AuthzRequest) -> bool:
    """Does this request (or its client) demand a multi-factor authentication?"""
    if claims.ACR_MFA in (req.acr_values or "").split():
        return True
    acr = ((req.claims_request or {}).get("id_token") or {}).get("acr")
    if isinstance(acr, dict):
        values = acr.get("values")
        if claims.ACR_MFA in (values if isinstance(values, list) else [acr.get("value")]):
            return True
    defaults = req.client.extra_metadata.get("default_acr_values")
    if isinstance(defaults, list) and claims.ACR_MFA in defaults:
        return True
    return req.client.client_id in settings.mfa_required_clients.split()


def decide(
    db: Session, settings: Settings, req: AuthzRequest, login: Login | None, parked: ParkedRequest | None
) -> Step:
    silent = "none" in req.prompt
    if needs_login(req, login, parked, utcnow()):
        return Step("error", "login_required", "The member must log in") if silent else Step("login")
    assert login is not None
    member = login.member
    if not member.verified:
        if silent:
            return Step("error", "interaction_required", "The member must confirm their email address")
        return Step("verify")
    refused = refusal(db, member, req.client)
    if refused:
        return (
            Step("error", "access_denied", "This account may not use this client")
            if silent
            else Step("refuse", description=refused)
        )
    if needs_mfa(settings, req) and not step_up.is_mfa(login.session.amr):
        if silent:
            return Step("error", "interaction_required", "A second authentication factor is required")
        return Step("mfa")
    if login.pending_step:
        if silent:
            return Step("error", "interaction_required", "The member must accept the updated privacy policy")
        return Step("step")
    forced = ("consent" in req.prompt) if parked is None else parked.consent_forced
    member_id = member.id or 0
    if not forced and not consents.needed(
        db, settings, member_id, req.client.client_id, req.scopes, req.requested_claims
    ):
        return Step("issue")
    if silent:
        return Step("error", "consent_required", "The member must consent")
    if req.client.trusted and not forced:
        consents.record(db, settings, member_id, req.client.client_id, req.scopes, req.requested_claims, implicit=True)
        return Step("issue")
    return Step("consent")
