"""The UserInfo endpoint (OIDC Core §5.3): GET and POST, the bearer token in the
``Authorization`` header (RFC 6750 §2.1) or, for POST, in the form body (§2.2) — not both.

Errors follow RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer`` (and ``error="invalid_token"``
when a token was presented), 403 ``insufficient_scope`` without ``openid``. Each answer counts one
``userinfo`` access in the member's data-access log.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portail.config import Settings
from portail.oidc import claims, tokens, usage
from portail.oidc.server import InputError, read_input
from portail.web import json_error

REALM = 'Bearer realm="Portail"'


def _challenge(error: str, description: str, status: int) -> Response:
    header = f'{REALM}, error="{error}", error_description="{description}"'
    return json_error(error, description, status, {"WWW-Authenticate": header})


def claims_for(db: Session, settings: Settings, token: str) -> dict[str, object]:
    """The userinfo claims of a valid token (raises ``tokens.InvalidToken``)."""
    verified = tokens.check_access_token(db, settings, token)
    scope = str(verified.claims.get("scope", ""))
    if "openid" not in scope.split():
        raise tokens.InvalidToken("insufficient_scope", "The access token lacks the openid scope")
    if verified.member is None or verified.grant is None:
        raise tokens.InvalidToken("invalid_token", "The access token does not designate a member")
    body = claims.userinfo(
        db, settings.secret_key, verified.member, verified.client, scope, verified.grant.claims_request
    )
    usage.count_access(db, settings, verified.member.id or 0, verified.client.client_id, "userinfo", scope)
    return body


async def userinfo(request: Request) -> Response:
    try:
        inp = await read_input(request)
    except InputError as exc:
        return json_error("invalid_request", str(exc).capitalize(), 400)
    header = inp.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    in_header = value.strip() if scheme.lower() == "bearer" else ""
    in_body = inp.first("access_token") if inp.method == "POST" else None
    if in_header and in_body:
        return json_error("invalid_request", "Use only one way to send the access token", 400)
    token = in_header or in_body
    if not token:
        return Response(status_code=401, headers={"WWW-Authenticate": REALM, "Cache-Control": "no-store"})
    try:
        # One read that decides, then the access-log upsert: no transaction needed (run_autocommit).
        body = await request.app.state.db.run_autocommit(claims_for, request.app.state.settings, token)
    except tokens.InvalidToken as exc:
        return _challenge(exc.error, exc.description, 403 if exc.error == "insufficient_scope" else 401)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})
