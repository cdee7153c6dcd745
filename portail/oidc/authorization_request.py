"""Validation of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1-2, RFC 7636 §4.3)
and the shapes of its possible outcomes.

Errors go back to the client (RFC 6749 §4.1.2.1) only once the client and its ``redirect_uri`` are
known to be valid; before that the member sees an error page (never an open redirect). Every
answer to the client carries ``iss`` (RFC 9207 §2) and the ``state`` it sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from portail.config import Settings
from portail.oidc import claims, client_cache, clients, extensions
from portail.oidc.models import OAuthClient

PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.2
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
RESPONSE_MODES = ("query", "form_post")
LIMITS = {"client_id": 100, "redirect_uri": 1000, "state": 1024, "nonce": 512, "claims": 4096, "scope": 1000}


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class ToClient:
    """Deliver ``params`` to the client's redirect URI (302 with a query, or an auto-posted form)."""

    redirect_uri: str
    response_mode: str
    params: list[tuple[str, str]]


@dataclass(frozen=True)
class ShowError:
    """An error page for the member (``message`` is a French source string)."""

    message: str
    status: int = 400


@dataclass(frozen=True)
class GoTo:
    """A page of Portail: login, consent."""

    url: str


@dataclass(frozen=True)
class AskVerification:
    """The member must confirm their email first; ``resume_url`` continues afterwards."""

    resume_url: str


Outcome = ToClient | ShowError | GoTo | AskVerification


class Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


# ---------------------------------------------------------------- the validated request


@dataclass(frozen=True)
class AuthzRequest:
    client: OAuthClient
    redirect_uri: str
    response_mode: str
    state: str | None
    scope: str
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    claims_request: dict[str, Any] | None = None
    acr_values: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    @property
    def requested_claims(self) -> list[str]:
        return claims.requested_claims(self.claims_request)


def reply(settings: Settings, req: AuthzRequest, params: list[tuple[str, str]]) -> ToClient:
    extra = [("state", req.state)] if req.state is not None else []
    return ToClient(req.redirect_uri, req.response_mode, [*params, *extra, ("iss", settings.issuer)])


def error_reply(settings: Settings, req: AuthzRequest, error: str, description: str) -> ToClient:
    return reply(settings, req, [("error", error), ("error_description", description)])


def validate(db: Session, settings: Settings, pairs: tuple[tuple[str, str], ...]) -> AuthzRequest:
    """The validated request, or ``Refused`` with the outcome to show."""
    values: dict[str, str] = {}
    repeated: list[str] = []
    for key, value in pairs:
        if key in values:
            repeated.append(key)
        else:
            values[key] = value
    client_id = values.get("client_id", "")
    redirect_uri = values.get("redirect_uri", "")
    if not client_id or "client_id" in repeated or len(client_id) > LIMITS["client_id"]:
        raise Refused(ShowError("La demande de connexion ne précise pas correctement l’outil qui la fait."))
    client = client_cache.get(db, client_id)  # every /authorize: the per-process cache (read-only row)
    if client is None or not client.active:
        raise Refused(ShowError("Cet outil n’est pas (ou plus) enregistré auprès de Portail."))
    if (
        not redirect_uri
        or "redirect_uri" in repeated
        or len(redirect_uri) > LIMITS["redirect_uri"]
        or not clients.redirect_uri_allowed(client, redirect_uri)
    ):
        raise Refused(ShowError("L’adresse de retour demandée n’est pas enregistrée pour cet outil."))

    mode = values.get("response_mode") or "query"
    req = AuthzRequest(
        client,
        redirect_uri,
        mode if mode in RESPONSE_MODES else "query",
        values.get("state"),
        "",
        params=values,
    )

    def refuse(error: str, description: str) -> Refused:
        return Refused(error_reply(settings, req, error, description))

    if repeated:
        raise refuse("invalid_request", f"Parameter {sorted(set(repeated))[0]} is repeated")
    too_long = [k for k, v in values.items() if len(v) > LIMITS.get(k, 2048)]
    if too_long or len(values) > 50:
        raise refuse("invalid_request", f"Parameter {too_long[0] if too_long else 'count'} is too large")
    if mode not in RESPONSE_MODES:
        raise refuse("invalid_request", "Unsupported response_mode")
    if "request" in values:
        raise refuse("request_not_supported", "Request objects are not supported")
    if "request_uri" in values:
        raise refuse("request_uri_not_supported", "Request URIs are not supported")
    response_type = values.get("response_type")
    if not response_type:
        raise refuse("invalid_request", "Missing response_type")
    if response_type != "code":
        raise refuse("unsupported_response_type", "Only response_type=code is supported")
    if "code" not in client.response_types or "authorization_code" not in client.grant_types:
        raise refuse("unauthorized_client", "The client may not use the authorization code flow")
    scope = _scope(values.get("scope", ""), client, claims.scopes_supported(extensions.of(db).api_scopes))
    if scope is None:
        raise refuse("invalid_scope", "Unknown scope, or a scope this client may not request")
    challenge, method = values.get("code_challenge"), values.get("code_challenge_method")
    if method == "plain":
        raise refuse("invalid_request", "code_challenge_method plain is not supported, use S256")
    if method is not None and method != "S256":
        raise refuse("invalid_request", "Unsupported code_challenge_method")
    if challenge is not None and method is None:
        raise refuse("invalid_request", "code_challenge_method is required (S256)")
    if method is not None and not challenge:
        raise refuse("invalid_request", "Missing code_challenge")
    if challenge is not None and not PKCE_CHALLENGE.match(challenge):
        raise refuse("invalid_request", "Malformed code_challenge")
    if client.is_public and challenge is None:
        raise refuse("invalid_request", "PKCE with S256 is required for public clients")
    prompt = frozenset((values.get("prompt") or "").split())
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise refuse("invalid_request", "Invalid prompt")
    max_age_raw = values.get("max_age")
    if max_age_raw is not None and not (max_age_raw.isascii() and max_age_raw.isdecimal() and len(max_age_raw) <= 9):
        raise refuse("invalid_request", "max_age must be a non-negative integer")
    try:
        claims_request = claims.parse_claims_request(values.get("claims"))
    except claims.ClaimsRequestError as exc:
        raise refuse("invalid_request", f"Invalid claims parameter: {exc}") from exc
    return AuthzRequest(
        client,
        redirect_uri,
        mode,
        values.get("state"),
        scope,
        nonce=values.get("nonce") or None,
        code_challenge=challenge,
        prompt=prompt,
        max_age=int(max_age_raw) if max_age_raw is not None else None,
        claims_request=claims_request,
        acr_values=values.get("acr_values") or None,
        params=values,
    )


def _scope(raw: str, client: OAuthClient, supported: list[str]) -> str | None:
    """The requested scopes, deduplicated in order; None when one is unknown (not in ``supported``) or not allowed."""
    requested = list(dict.fromkeys(raw.split()))
    if not requested:
        return None
    known = set(supported)
    allowed = set(client.scope.split())
    if not all(s in known and s in allowed for s in requested):
        return None
    return " ".join(requested)
