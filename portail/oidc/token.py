"""The token endpoint (RFC 6749 §3.2, §5; OIDC Core §3.1.3): ``authorization_code``,
``refresh_token`` and ``client_credentials`` through authlib (``grants.py``).

Before authlib sees the request: a repeated parameter (RFC 6749 §3.2 "parameters MUST NOT be
included more than once"), an oversized one, or a missing ``grant_type`` is ``invalid_request``.
Answers carry ``Cache-Control: no-store`` (§5.1). A ``private_key_jwt`` client's ``jwks_uri`` is
fetched before the database work (``client_keys.prefetch``), in the tail shared with introspection and
revocation (``client_endpoint.py``).
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portail import metrics
from portail.config import Settings
from portail.oidc import client_cache, client_endpoint
from portail.oidc.client_keys import RemoteKeys
from portail.oidc.grants import build_server
from portail.oidc.server import Answer, HttpInput

LIMITS = {"client_assertion": 8192, "code_verifier": 128}


# Metric labels stay a short closed list, whatever a client sends (RFC 6749 §5.2 error codes).
GRANT_LABELS = {"authorization_code", "refresh_token", "client_credentials"}
ERROR_LABELS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}


def grant_label(grant_type: str | None) -> str:
    return grant_type if grant_type in GRANT_LABELS else "other"


def result_label(answer: Answer) -> str:
    if answer.status == 200:
        return "ok"
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    return error if error in ERROR_LABELS else "error"


def _invalid(description: str) -> Answer:
    return Answer(
        400,
        {"error": "invalid_request", "error_description": description},
        [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
    )


def exchange(
    db: Session, settings: Settings, inp: HttpInput, remote_keys: RemoteKeys | None = None, *, on_trust: bool = False
) -> Answer:
    repeated = inp.repeated()
    if repeated:
        return _invalid(f"Parameter {repeated[0]} is repeated")
    oversized = inp.oversized(LIMITS)
    if oversized:
        return _invalid(f"Parameter {oversized[0]} is too large")
    if not inp.first("grant_type"):
        return _invalid("Missing grant_type")
    server = build_server(db, settings, remote_keys)
    server.tentative = on_trust
    answer: Answer = server.create_token_response(inp)
    client_cache.confirm(db)  # the token or code lookup read the clients' version: no statement more
    return answer


def _count(inp: HttpInput, answer: Answer) -> None:
    metrics.TOKEN_REQUESTS.labels(grant_label(inp.first("grant_type")), result_label(answer)).inc()


async def token(request: Request) -> Response:
    return await client_endpoint.answer(
        request, exchange, autocommit=_client_credentials, on_trust=_on_trust, observe=_count
    )


def _on_trust(inp: HttpInput) -> bool:
    """A refresh or a code exchange takes its client on trust (``client_cache``): the refresh-token
    or code lookup reads the clients' version with the token. Client credentials reads it first."""
    return inp.first("grant_type") in ("refresh_token", "authorization_code")


def _client_credentials(inp: HttpInput) -> bool:
    """A client-credentials grant only reads the client (and records a ``private_key_jwt``
    assertion's ``jti``, one insert): no transaction (``Database.run_autocommit``). The code and
    refresh grants change several rows together and keep theirs."""
    return inp.first("grant_type") == "client_credentials" and not inp.repeated()
