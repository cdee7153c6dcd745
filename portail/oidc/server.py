"""The authlib ↔ Starlette adapter (authlib ships server integrations for Flask and Django only).

- ``read_input`` snapshots a Starlette request (method, URL, headers, query and form parameters,
  with size limits) into an ``HttpInput`` that can cross into a worker thread.
- ``PortailRequest`` is authlib's ``OAuth2Request`` over that snapshot; ``PortailJsonRequest`` its
  ``JsonRequest`` (RFC 7591 registration bodies).
- ``PortailServer`` is authlib's ``AuthorizationServer`` bound to one database session: it finds
  clients (``ClientAdapter`` implements authlib's ``ClientMixin`` over ``OAuthClient``), answers
  with an ``Answer`` (status, body, headers) that ``to_response`` turns into a Starlette response.
  Grants and endpoints are registered by ``grants.build_server`` and the endpoint modules.

Transport security: authlib's ``OAuth2Request`` refuses any URI that is not https or loopback with
a port (``InsecureTransportError``). Portail builds every URI from the ``issuer`` setting (never
from the Host header), so the decision belongs to the deployment and is not re-made per request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, JsonRequest, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError, OAuth2Error
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from portail.config import Settings
from portail.oidc import client_cache
from portail.oidc import clients as client_store
from portail.oidc.models import OAuthClient

# authlib logs every issued token (access, refresh, ID) at DEBUG: never let debug logging show them.
logging.getLogger("authlib").setLevel(logging.INFO)

MAX_BODY_BYTES = 64 * 1024
MAX_PARAMS = 60
MAX_VALUE_LENGTH = 4096


class InputError(Exception):
    """A request too large or unreadable to be an OAuth request (answered ``invalid_request``)."""


@dataclass(frozen=True)
class HttpInput:
    """What a handler read from the HTTP request; plain data that worker threads may use."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    json_body: Any = None

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The OAuth parameters: the query for GET, the form body otherwise."""
        return self.query if self.method == "GET" else self.form

    def repeated(self) -> list[str]:
        seen: set[str] = set()
        twice = []
        for key, _value in self.params:
            if key in seen and key not in twice:
                twice.append(key)
            seen.add(key)
        return twice

    def oversized(self, limits: Mapping[str, int] | None = None) -> list[str]:
        limits = limits or {}
        return [k for k, v in self.params if len(v) > limits.get(k, MAX_VALUE_LENGTH)]

    def first(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


async def read_input(request: Request) -> HttpInput:
    """Snapshot the request; raise ``InputError`` when it is too large or not form data. (JSON bodies
    are read by ``portail.web.json_body``, the one JSON reader.)"""
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = tuple(parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_PARAMS + 1))
    if len(query) > MAX_PARAMS:
        raise InputError("too many parameters")
    form: tuple[tuple[str, str], ...] = ()
    if request.method in ("POST", "PUT", "PATCH"):
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise InputError("request body too large")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise InputError("request body too large")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body:
            if content_type not in ("application/x-www-form-urlencoded", ""):
                raise InputError("unsupported content type")
            try:
                form = tuple(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_PARAMS + 1))
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError("malformed form body") from exc
            if len(form) > MAX_PARAMS:
                raise InputError("too many parameters")
            if any("\x00" in key or "\x00" in value for key, value in form):
                raise InputError("a parameter contains a NUL character")
    return HttpInput(request.method, request.url.path, headers, query, form)


# ---------------------------------------------------------------- authlib requests


class PortailPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Headers(dict[str, str]):
    """Header names are case-insensitive (authlib asks for ``Authorization``)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class PortailRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, inp: HttpInput, uri: str) -> None:
        # See the module docstring: the URI is the issuer's, checked once by configuration.
        super().__init__(inp.method, "https://issuer.invalid/", headers=Headers(inp.headers))
        self.uri = uri
        self.input = inp
        self.payload = PortailPayload(inp.params)
        self._args = dict(reversed(inp.query))
        self._form = dict(reversed(inp.form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class PortailJsonPayload:
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


class PortailJsonRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, inp: HttpInput, uri: str) -> None:
        super().__init__(inp.method, uri, Headers(inp.headers))
        self.input = inp
        self.payload = PortailJsonPayload(inp.json_body)


# ---------------------------------------------------------------- answers


@dataclass
class Answer:
    """An HTTP answer computed in a worker thread, turned into a Starlette response by the route."""

    status: int
    body: Any = ""
    headers: list[tuple[str, str]] = field(default_factory=list)


def to_response(answer: Answer) -> Response:
    headers = {k: v for k, v in answer.headers if k.lower() != "content-type"}
    content_type = next((v for k, v in answer.headers if k.lower() == "content-type"), "")
    if isinstance(answer.body, dict | list):
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)
    if "json" in content_type:
        return Response(answer.body, status_code=answer.status, headers=headers, media_type="application/json")
    return HTMLResponse(answer.body or "", status_code=answer.status, headers=headers)


# ---------------------------------------------------------------- clients seen by authlib


class ClientAdapter(ClientMixin):  # type: ignore[misc]
    """authlib's view of an ``OAuthClient`` row."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OIDC Core §3.1.2.1: redirect_uri is always sent

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.row.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return client_store.redirect_uri_allowed(self.row, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return client_store.verify_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Secret clients may use basic or post (both accepted, whatever was registered)."""
        if self.row.is_public:
            return method == "none"
        if self.row.token_endpoint_auth_method == "private_key_jwt":  # noqa: S105
            return method == "private_key_jwt"
        return method in client_store.SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.row.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


# ---------------------------------------------------------------- the server


class PortailServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server bound to one database session and Portail's settings."""

    def __init__(self, db: Session, settings: Settings, scopes_supported: list[str]) -> None:
        super().__init__(scopes_supported=scopes_supported)
        self.db = db
        self.settings = settings
        self._clients: dict[str, ClientAdapter | None] = {}
        # May take clients from the cache on trust (``client_cache``: confirmed before answering).
        self.tentative = False

    def query_client(self, client_id: str) -> ClientAdapter | None:
        if not isinstance(client_id, str) or len(client_id) > 100:
            return None
        if client_id not in self._clients:
            row = client_cache.cached_on_trust(self.db, client_id) if self.tentative else None
            if row is None:
                row = client_cache.get(self.db, client_id)  # read-only: never changed through the server
            self._clients[client_id] = ClientAdapter(row) if row is not None and row.active else None
        return self._clients[client_id]

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Grants persist what they issue themselves (``grants.py``)."""

    def create_oauth2_request(self, request: HttpInput | PortailRequest) -> PortailRequest:
        if isinstance(request, PortailRequest):
            return request
        return PortailRequest(request, self.settings.issuer + request.path)

    def create_json_request(self, request: HttpInput | PortailJsonRequest) -> PortailJsonRequest:
        if isinstance(request, PortailJsonRequest):
            return request
        return PortailJsonRequest(request, self.settings.issuer + request.path)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return Answer(status, body, list(headers))

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Answer:
        if error.error == "unsupported_token_type":
            error.status_code = 400  # RFC 7009 §2.2.1 (authlib answers 401)
        answer: Answer = super().handle_error_response(request, error)
        return answer

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signals are not used (hooks and the audit log cover them)."""

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Any:
        """RFC 6749 §5.2: a failed client authentication is always 401 with ``WWW-Authenticate``."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401
            raise

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope and not set(scope.split()) <= set(self.scopes_supported or ()):
            raise InvalidScopeError()
