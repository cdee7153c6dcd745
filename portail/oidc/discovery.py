"""Provider metadata: OpenID Connect Discovery 1.0 §3 at ``/.well-known/openid-configuration`` and
RFC 8414 §2 at ``/.well-known/oauth-authorization-server``.

Endpoint URLs come from the route names of ``routes.py`` (``url_path_for``), so metadata, routes
and the README's table cannot drift: an endpoint whose route does not exist is not listed. The
``end_session_endpoint`` carries no query string (Nextcloud appends its parameters by string
concatenation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import NoMatchFound

from portail.config import Settings
from portail.oidc import claims, keys
from portail.oidc.clients import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS

# discovery key → route name (routes.py)
ENDPOINTS = {
    "authorization_endpoint": "authorize",
    "token_endpoint": "token",
    "userinfo_endpoint": "userinfo",
    "jwks_uri": "jwks",
    "registration_endpoint": "register",
    "end_session_endpoint": "end_session",
    "revocation_endpoint": "revocation",
    "introspection_endpoint": "introspection",
}


def metadata(settings: Settings, paths: dict[str, str], api_scopes: Iterable[str] = ()) -> dict[str, Any]:
    """The metadata document; ``paths`` maps discovery keys to the paths of existing routes, ``api_scopes``
    are the application's (``ProviderExtensions.api_scopes``)."""
    issuer = settings.issuer
    doc: dict[str, Any] = {"issuer": issuer}
    doc.update({key: issuer + path for key, path in paths.items()})
    doc.update(
        {
            "scopes_supported": claims.scopes_supported(api_scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(keys.ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": list(claims.CLAIMS_SUPPORTED),
            "claims_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "acr_values_supported": [claims.ACR_PASSWORD, claims.ACR_MFA],
            "ui_locales_supported": ["fr-CA", "en"],
            "claims_locales_supported": ["fr-CA", "en"],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }
    )
    return doc


def endpoint_paths(request: Request) -> dict[str, str]:
    found = {}
    for key, name in ENDPOINTS.items():
        try:
            found[key] = str(request.app.url_path_for(name))
        except NoMatchFound:
            continue
    return found


def _document(request: Request) -> bytes:
    cached = getattr(request.app.state, "oidc_metadata", None)
    if cached is None:
        state = request.app.state
        cached = json.dumps(metadata(state.settings, endpoint_paths(request), state.oidc.api_scopes)).encode()
        request.app.state.oidc_metadata = cached
    return cached  # type: ignore[no-any-return]


async def openid_configuration(request: Request) -> Response:
    """Both well-known documents: OIDC Discovery and RFC 8414 serve the same metadata."""
    return Response(
        _document(request),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )
