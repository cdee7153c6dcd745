"""A fake Keycloak, written from Keycloak's published Admin REST API documentation
(https://www.keycloak.org/docs-api/latest/rest-api/) and its OpenID Connect token endpoint — not
Keycloak. It answers only the calls python-keycloak makes for Portail's bridge (``keycloak/urls_patterns.py``
of marcospereirampj/python-keycloak), served over real HTTP on 127.0.0.1 (``tests.fakes.server.serve``):

- ``POST /realms/{realm}/protocol/openid-connect/token`` (form): ``client_credentials`` for a client
  with a service account, ``password`` (resource-owner grant) for a client with direct access grants,
  ``refresh_token``. Unknown realm: 404 ``{"error": "Realm does not exist"}``; bad client: 401
  ``{"error": "unauthorized_client", "error_description": "Invalid client or Invalid client
  credentials"}``; grant not enabled for the client: 400 ``unauthorized_client``; wrong user or
  password: 401 ``{"error": "invalid_grant", "error_description": "Invalid user credentials"}``;
  disabled user: 400 ``invalid_grant`` "Account disabled". Success: ``access_token``, ``expires_in``,
  ``refresh_token``, ``refresh_expires_in``, ``token_type: "Bearer"``, ``session_state``, ``scope``.
- ``POST /realms/{realm}/protocol/openid-connect/logout`` (form, client + ``refresh_token``): 204.
- Admin API (``Authorization: Bearer`` of a service-account token of that realm, else 401
  ``{"error": "HTTP 401 Unauthorized"}``; unknown realm 404 ``{"error": "Realm not found."}``):
  ``GET users?first&max&briefRepresentation`` (UserRepresentation: ``id, username, email,
  firstName, lastName, emailVerified, enabled, createdTimestamp``), ``GET users/count``,
  ``GET users/{id}/groups`` (GroupRepresentation ``id, name, path``; 404 ``User not found``),
  ``GET|POST identity-provider/instances`` (POST: 201 with ``Location``; an alias already used: 409
  ``{"errorMessage": "Identity Provider {alias} already exists"}``; no alias or unknown
  ``providerId``: 400), ``GET|PUT|DELETE identity-provider/instances/{alias}`` (404 ``Could not find
  identity provider``; GET answers ``config.clientSecret`` masked as ``**********``, and PUT keeps the
  stored secret when given the mask), ``GET|POST identity-provider/instances/{alias}/mappers`` and
  ``PUT|DELETE …/mappers/{id}`` (400 for an unknown ``identityProviderMapper``).

Test controls: ``mode`` = ``"ok"`` | ``"error"`` (every answer 500) | ``"hang"`` (answers after
``hang_seconds``); ``shuffle_pages`` makes every page after the first skip one user (a user
deleted while the realm is being listed); ``password_grants`` counts resource-owner password grants.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MASK = "**********"
IDP_PROVIDERS = {"oidc", "keycloak-oidc", "saml"}
IDP_MAPPERS = {
    "oidc-user-attribute-idp-mapper",
    "oidc-hardcoded-role-idp-mapper",
    "oidc-advanced-group-idp-mapper",
    "oidc-username-idp-mapper",
    "hardcoded-user-session-attribute-idp-mapper",
}


@dataclass
class FakeClient:
    secret: str
    service_account: bool = False  # client credentials → Admin API (realm-management roles)
    direct_access: bool = False  # resource-owner password grant


@dataclass
class FakeUser:
    username: str
    email: str | None
    password: str
    first_name: str = ""
    last_name: str = ""
    email_verified: bool = True
    enabled: bool = True
    groups: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: int = 1_600_000_000_000

    def representation(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "emailVerified": self.email_verified,
            "enabled": self.enabled,
            "createdTimestamp": self.created,
            "totp": False,
            "requiredActions": [],
            "notBefore": 0,
        }
        if self.email is not None:
            data["email"] = self.email
        return data


@dataclass
class FakeRealm:
    clients: dict[str, FakeClient] = field(default_factory=dict)
    users: list[FakeUser] = field(default_factory=list)
    idps: dict[str, dict[str, Any]] = field(default_factory=dict)
    mappers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FakeKeycloak:
    def __init__(self) -> None:
        self.realms: dict[str, FakeRealm] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # access token → (realm, client id)
        self.mode = "ok"
        self.hang_seconds = 30.0
        self.shuffle_pages = False
        self.password_grants = 0
        self.app = Starlette(
            routes=[
                Route("/realms/{realm}/protocol/openid-connect/token", self.token, methods=["POST"]),
                Route("/realms/{realm}/protocol/openid-connect/logout", self.logout, methods=["POST"]),
                Route("/admin/realms/{realm}/users", self.users, methods=["GET"]),
                Route("/admin/realms/{realm}/users/count", self.users_count, methods=["GET"]),
                Route("/admin/realms/{realm}/users/{id}/groups", self.user_groups, methods=["GET"]),
                Route("/admin/realms/{realm}/identity-provider/instances", self.idps, methods=["GET", "POST"]),
                Route(
                    "/admin/realms/{realm}/identity-provider/instances/{alias}",
                    self.idp,
                    methods=["GET", "PUT", "DELETE"],
                ),
                Route(
                    "/admin/realms/{realm}/identity-provider/instances/{alias}/mappers",
                    self.mappers,
                    methods=["GET", "POST"],
                ),
                Route(
                    "/admin/realms/{realm}/identity-provider/instances/{alias}/mappers/{id}",
                    self.mapper,
                    methods=["PUT", "DELETE"],
                ),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.mode == "error":
            await JSONResponse({"error": "unknown_error"}, 500)(scope, receive, send)
            return
        if scope["type"] == "http" and self.mode == "hang":
            await asyncio.sleep(self.hang_seconds)
        await self.app(scope, receive, send)

    def realm(self, name: str) -> FakeRealm:
        return self.realms.setdefault(name, FakeRealm())

    # ------------------------------------------------------------ token endpoint

    async def token(self, request: Request) -> Response:
        realm = self.realms.get(request.path_params["realm"])
        if realm is None:
            return JSONResponse({"error": "Realm does not exist"}, 404)
        form = await request.form()
        client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        client = realm.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if not client.service_account:
                return _oauth_error(400, "unauthorized_client", "Client not enabled to retrieve service account")
            return self._tokens(request.path_params["realm"], client_id)
        if grant == "password":
            if not client.direct_access:
                return _oauth_error(400, "unauthorized_client", "Client not allowed for direct access grants")
            self.password_grants += 1
            login = str(form.get("username") or "").lower()
            user = next((u for u in realm.users if login in (u.username, (u.email or "").lower())), None)
            given = str(form.get("password") or "").encode()
            if user is None or not secrets.compare_digest(user.password.encode(), given):
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
            if not user.enabled:
                return _oauth_error(400, "invalid_grant", "Account disabled")
            return self._tokens(request.path_params["realm"], client_id, user=True)
        if grant == "refresh_token":
            return self._tokens(request.path_params["realm"], client_id)
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    def _tokens(self, realm: str, client_id: str, user: bool = False) -> Response:
        access = secrets.token_urlsafe(24)
        self.tokens[access] = (realm, client_id if not user else "")
        return JSONResponse(
            {
                "access_token": access,
                "expires_in": 300,
                "refresh_expires_in": 1800 if user else 0,
                "refresh_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "not-before-policy": 0,
                "session_state": str(uuid.uuid4()),
                "scope": "openid profile email",
            }
        )

    async def logout(self, request: Request) -> Response:
        return Response(status_code=204)

    # ------------------------------------------------------------ admin API

    def _admin(self, request: Request) -> FakeRealm | Response:
        name = request.path_params["realm"]
        header = request.headers.get("authorization", "")
        holder = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if holder is None or not holder[1]:
            return JSONResponse({"error": "HTTP 401 Unauthorized"}, 401)
        if name not in self.realms:
            return JSONResponse({"error": "Realm not found."}, 404)
        token_realm, client_id = holder
        client = self.realms[token_realm].clients.get(client_id)
        if token_realm not in (name, "master") or client is None or not client.service_account:
            return JSONResponse({"error": "HTTP 403 Forbidden"}, 403)
        return self.realms[name]

    async def users(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        first = int(request.query_params.get("first", 0))
        count = int(request.query_params.get("max", 100))
        if self.shuffle_pages and first:
            first += 1  # a user listed earlier was deleted meanwhile: this page skips one
        return JSONResponse([u.representation() for u in realm.users[first : first + count]])

    async def users_count(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        return JSONResponse(len(realm.users))

    async def user_groups(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        user = next((u for u in realm.users if u.id == request.path_params["id"]), None)
        if user is None:
            return JSONResponse({"error": "User not found"}, 404)
        first = int(request.query_params.get("first", 0))
        count = int(request.query_params.get("max", 100))
        groups = [{"id": f"g-{name}", "name": name, "path": f"/{name}", "subGroups": []} for name in user.groups]
        return JSONResponse(groups[first : first + count])

    async def idps(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        if request.method == "GET":
            return JSONResponse([_masked(idp) for idp in realm.idps.values()])
        body = await request.json()
        alias = body.get("alias") if isinstance(body, dict) else None
        if not alias or body.get("providerId") not in IDP_PROVIDERS:
            return JSONResponse({"errorMessage": "Invalid request"}, 400)
        if alias in realm.idps:
            return JSONResponse({"errorMessage": f"Identity Provider {alias} already exists"}, 409)
        realm.idps[alias] = {**body, "internalId": str(uuid.uuid4())}
        realm.mappers[alias] = []
        return Response(status_code=201, headers={"Location": f"{request.url}/{alias}"})

    async def idp(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        alias = request.path_params["alias"]
        if alias not in realm.idps:
            return JSONResponse({"error": "Could not find identity provider"}, 404)
        if request.method == "GET":
            return JSONResponse(_masked(realm.idps[alias]))
        if request.method == "DELETE":
            del realm.idps[alias]
            realm.mappers.pop(alias, None)
            return Response(status_code=204)
        body = await request.json()
        old = realm.idps[alias]
        config = dict(body.get("config") or {})
        if config.get("clientSecret") == MASK:
            config["clientSecret"] = old.get("config", {}).get("clientSecret")
        realm.idps[alias] = {**body, "config": config, "internalId": old["internalId"]}
        return Response(status_code=204)

    async def mappers(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        alias = request.path_params["alias"]
        if alias not in realm.idps:
            return JSONResponse({"error": "Could not find identity provider"}, 404)
        if request.method == "GET":
            return JSONResponse(realm.mappers[alias])
        body = await request.json()
        if body.get("identityProviderMapper") not in IDP_MAPPERS or body.get("identityProviderAlias") != alias:
            return JSONResponse({"errorMessage": "Invalid mapper"}, 400)
        mapper = {**body, "id": str(uuid.uuid4())}
        realm.mappers[alias].append(mapper)
        return Response(status_code=201, headers={"Location": f"{request.url}/{mapper['id']}"})

    async def mapper(self, request: Request) -> Response:
        realm = self._admin(request)
        if isinstance(realm, Response):
            return realm
        found = [m for m in realm.mappers.get(request.path_params["alias"], []) if m["id"] == request.path_params["id"]]
        if not found:
            return JSONResponse({"error": "Could not find mapper"}, 404)
        items = realm.mappers[request.path_params["alias"]]
        items.remove(found[0])
        if request.method == "PUT":
            items.append({**(await request.json()), "id": found[0]["id"]})
        return Response(status_code=204)


def _masked(idp: dict[str, Any]) -> dict[str, Any]:
    config = dict(idp.get("config") or {})
    if config.get("clientSecret"):
        config["clientSecret"] = MASK
    return {**idp, "config": config}


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status)
