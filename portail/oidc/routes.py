"""THE endpoint table of the OpenID Connect provider: the whole protocol surface on one screen.

Route names are the keys ``discovery.py`` looks up (``ENDPOINTS``), so a route listed here is
advertised, and one that is absent is not. Paths starting with ``/token``, ``/jwks``,
``/introspect``, ``/revoke``, ``/register`` and ``/.well-known/`` skip the session loader.
"""

from __future__ import annotations

from starlette.routing import Route

from portail.oidc import (
    admin,
    authorization,
    discovery,
    end_session,
    introspection,
    jwks,
    registration,
    revocation,
    token,
    userinfo,
)

# Endpoints read by programs, not people (discovery, keys, tokens, registration): their errors (404,
# 405, 413, 503…) are JSON, never a page, and the browser's session and unread badge are never loaded
# for them (``MACHINE_PATHS``, derived from these routes, is what ``create_app`` hands the middleware).
machine_routes = [
    Route(
        "/.well-known/openid-configuration",
        discovery.openid_configuration,
        methods=["GET"],
        name="openid_configuration",
    ),
    Route(
        "/.well-known/oauth-authorization-server",
        discovery.openid_configuration,
        methods=["GET"],
        name="oauth_metadata",
    ),
    Route("/jwks", jwks.jwks, methods=["GET"], name="jwks"),
    Route("/token", token.token, methods=["POST"], name="token"),
    Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"], name="userinfo"),
    Route("/revoke", revocation.revocation, methods=["POST"], name="revocation"),
    Route("/introspect", introspection.introspection, methods=["POST"], name="introspection"),
    Route("/register", registration.register, methods=["POST"], name="register"),
    Route("/register/{client_id}", registration.configure, methods=["GET", "PUT", "DELETE"], name="register_client"),
]
MACHINE_PATHS = tuple(
    dict.fromkeys(
        # every RFC 8615 well-known document is for programs, the federation's too (NodeInfo…)
        "/.well-known/" if route.path.startswith("/.well-known/") else route.path.split("{")[0]
        for route in machine_routes
    )
)

routes = [
    *machine_routes,
    Route("/authorize", authorization.authorize, methods=["GET", "POST"], name="authorize"),
    Route("/authorize/resume/{parked_id}", authorization.resume, methods=["GET"], name="authorize_resume"),
    Route("/authorize/consent/{parked_id}", authorization.consent, methods=["GET", "POST"], name="consent"),
    Route("/end-session", end_session.end_session, methods=["GET", "POST"], name="end_session"),
    Route("/admin/oidc/clients", admin.clients_page, methods=["GET"], name="admin_oidc_clients"),
]
