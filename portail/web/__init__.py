"""The web shell shared by every package: templates, languages, CSRF, flash messages, error pages
and security headers.

- Languages: French (fr-CA) is the source language of every message; English translations live in
  ``portail/locale/en/*.po`` (one catalogue per package, merged at startup with Babel). The language
  of a request is the member's choice, else the ``lang`` cookie, else ``Accept-Language``, else the
  default setting.
- CSRF: double-submit token. A random per-browser value lives in the ``portail_csrf`` cookie; forms
  carry an itsdangerous signature of it (``csrf_token``), checked by ``read_form``.
- Flash: one-shot messages in a signed cookie.

Beside this module: ``json_body`` (the one reader of JSON request bodies), ``outage`` (503 with
``Retry-After`` while the database cannot be reached) and ``health`` (``/healthz``, ``/readyz``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import gettext
import hmac
import io
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portail.config import Settings

log = logging.getLogger("portail.web")

# Pages and static files live inside the package, so an installed wheel serves them.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE_DIR / "templates"
STATIC = PACKAGE_DIR / "static"
LOCALE_DIR = PACKAGE_DIR / "locale"
LOCALES = ("fr-CA", "en")
CSRF_COOKIE = "portail_csrf"
FLASH_COOKIE = "portail_flash"
LANG_COOKIE = "lang"
MAX_FORM_FIELDS = 100
MAX_FIELD_LENGTH = 10_000
MAX_BODY_BYTES = 1_048_576  # a request body larger than this is refused with 413


def _at_most(limit: int) -> str:
    """A regular expression matching the decimal numbers from 0 to ``limit`` (no leading zeros)."""
    text = str(limit)
    parts = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for index, digit in enumerate(text):
        lowest = 1 if index == 0 else 0
        if int(digit) > lowest:
            rest = len(text) - index - 1
            parts.append(text[:index] + f"[{lowest}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    return "(?:" + "|".join([*parts, text]) + ")"


class RowIdConvertor(IntegerConvertor):
    """Every ``{name:int}`` path parameter: at most 2**31 - 1 (ids are 32-bit INTEGER columns on
    PostgreSQL), so a number no row can have does not match the route (404) instead of making the
    query fail. Registered when this module is imported, before any package builds its routes."""

    regex = _at_most(2**31 - 1)


register_url_convertor("int", RowIdConvertor())


# ---------------------------------------------------------------- languages


def _load_catalogues() -> dict[str, gettext.NullTranslations]:
    catalogues: dict[str, gettext.NullTranslations] = {"fr-CA": gettext.NullTranslations()}
    for folder in sorted(LOCALE_DIR.glob("*")):
        if not folder.is_dir():
            continue
        merged: gettext.NullTranslations | None = None
        for po in sorted(folder.glob("*.po")):
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=folder.name)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translations = gettext.GNUTranslations(buffer)
            if merged is None:
                merged = translations
            else:
                merged.add_fallback(translations)
        if merged is not None:
            catalogues[folder.name] = merged
    return catalogues


_CATALOGUES = _load_catalogues()


def translator(locale: str) -> gettext.NullTranslations:
    return _CATALOGUES.get(locale, _CATALOGUES["fr-CA"])


def translate(locale: str, message: str, **params: Any) -> str:
    """Translate a French source message into ``locale`` and fill its ``%(name)s`` parameters."""
    text = translator(locale).gettext(message)
    return text % params if params else text


def pick_locale(accept_language: str | None, default: str) -> str:
    """The supported language a visitor's ``Accept-Language`` prefers (RFC 9110 §12.5.4), else ``default``.

    Any French variant gives fr-CA, any English variant gives en; ``q=0`` (or a malformed weight)
    means "not acceptable".
    """
    if not accept_language:
        return default
    preferred: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        lang, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            preferred.append((-weight, index, lang.strip().lower()))
    for _weight, _index, lang in sorted(preferred):
        base = lang.replace("_", "-").split("-")[0]
        if base == "fr":
            return "fr-CA"
        if base == "en":
            return "en"
    return default


def request_locale(request: Request) -> str:
    """The member's language if known (set by the session loader), else cookie, else header."""
    chosen = getattr(request.state, "locale", None)
    if chosen in LOCALES:
        return str(chosen)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LOCALES:
        return str(cookie)
    settings: Settings = request.app.state.settings
    return pick_locale(request.headers.get("accept-language"), settings.default_locale)


def N_(message: str) -> str:
    """Mark a French source message for extraction where it is defined; it is translated where shown."""
    return message


def _(request: Request, message: str, **params: Any) -> str:
    """Translate for the language of this request."""
    return translate(request_locale(request), message, **params)


# ---------------------------------------------------------------- templates


_RENDERING_CSRF: contextvars.ContextVar[str] = contextvars.ContextVar("portail_rendering_csrf", default="")


def _rendering_csrf() -> str:
    """The CSRF token of the page being rendered: macros imported without context read it here."""
    return _RENDERING_CSRF.get()


@pass_context
def _local_time(context: Any, value: dt.datetime | dt.date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``{{ when|local }}``: a stored (UTC) time shown in Portail's time zone (setting ``timezone``)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        settings = context.get("settings")
        zone = ZoneInfo(settings.timezone) if settings is not None else dt.UTC
        value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(zone)
    return value.strftime(fmt)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local_time
    env.globals["LOCALES"] = LOCALES
    env.globals["rendering_csrf_token"] = _rendering_csrf
    return env


TEMPLATES_ENV = make_templates()


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page in the request's language with CSRF, flash and the current member."""
    locale = request_locale(request)
    catalogue = translator(locale)

    def gettext_(message: str, **params: Any) -> Markup:
        text = catalogue.gettext(message)
        return Markup(text) % params if params else Markup(text)  # noqa: S704 - catalogue text is ours

    values: dict[str, Any] = {
        "request": request,
        "_": gettext_,
        "locale": locale,
        "lang": "fr" if locale == "fr-CA" else "en",
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
        "member": getattr(request.state, "member", None),
        "url_for": request.url_for,
        "settings": request.app.state.settings,
    }
    values.update(context or {})
    marker = _RENDERING_CSRF.set(str(values["csrf_token"]))
    try:
        body = TEMPLATES_ENV.get_template(name).render(values)
    finally:
        _RENDERING_CSRF.reset(marker)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers["Content-Language"] = locale
    return response


def language_name(code: str) -> str:
    return Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_")) or code


TEMPLATES_ENV.globals["language_name"] = language_name


# ---------------------------------------------------------------- CSRF


def _csrf_serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.settings.secret_key, salt="portail.csrf")


def csrf_token(request: Request) -> str:
    seed = getattr(request.state, "csrf_seed", None) or request.cookies.get(CSRF_COOKIE)
    if not seed:
        seed = secrets.token_urlsafe(24)
    request.state.csrf_seed = seed
    return str(_csrf_serializer(request).dumps(seed))


def csrf_valid(request: Request, token: str | None) -> bool:
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or not token:
        return False
    try:
        signed_seed = _csrf_serializer(request).loads(token)
    except BadSignature:
        return False
    return isinstance(signed_seed, str) and hmac.compare_digest(signed_seed, seed)


class FormError(Exception):
    """A form that cannot be processed (bad CSRF token, too many or too long fields)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def read_form(request: Request, *, check_csrf: bool = True) -> FormData:
    """Parse a posted form with size limits; raise ``FormError`` (already translated) when refused."""
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except HTTPException:
        raise  # e.g. 413 from the body limit of WebShellMiddleware
    except Exception as exc:  # multipart/urlencoded parser errors are all bad input
        raise FormError(_(request, "Le formulaire envoyé est illisible.")) from exc
    for key, value in form.multi_items():
        if isinstance(value, str) and len(value) > MAX_FIELD_LENGTH:
            raise FormError(_(request, "Un des champs est trop long."))
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise FormError(_(request, "Le formulaire envoyé est illisible."))
    if check_csrf and not csrf_valid(request, str(form.get("csrf_token") or "")):
        raise FormError(
            _(
                request,
                "Votre formulaire a expiré ou ne vient pas de Portail. Veuillez réessayer.",
            )
        )
    return form


def field(form: FormData, name: str) -> str:
    """A single text field, stripped; an empty string when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------- flash messages


def flash(request: Request, message: str, category: str = "info") -> None:
    pending = list(getattr(request.state, "flash_out", []))
    pending.append([category, message])
    request.state.flash_out = pending


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    if getattr(request.state, "flashes_read", False):
        return []
    request.state.flashes_read = True
    raw = request.cookies.get(FLASH_COOKIE)
    pending = list(getattr(request.state, "flash_out", []))
    request.state.flash_out = []
    messages: list[tuple[str, str]] = []
    if raw:
        try:
            data = URLSafeTimedSerializer(request.app.state.settings.secret_key, salt="portail.flash").loads(
                raw, max_age=600
            )
            messages = [(str(c), str(m)) for c, m in data][:10]
        except (BadSignature, ValueError, TypeError):
            messages = []
        request.state.clear_flash_cookie = True
    return messages + [(str(c), str(m)) for c, m in pending]


# ---------------------------------------------------------------- middleware


class WebShellMiddleware:
    """Sets security headers, the CSRF seed cookie and the flash cookie on every response, refuses
    request bodies larger than ``MAX_BODY_BYTES`` (413), query strings carrying NUL (400) and paths
    carrying NUL (404)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.flash_signer = URLSafeTimedSerializer(settings.secret_key, salt="portail.flash")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        secure = self.settings.secure_cookies

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                existing = {k.lower() for k, _ in headers}
                state = scope.get("state", {})
                headers.extend(h for h in _encoded_security_headers(secure, state.get("csp")) if h[0] not in existing)
                cookie_flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
                seed = state.get("csrf_seed")
                if seed and request.cookies.get(CSRF_COOKIE) != seed:
                    headers.append((b"set-cookie", f"{CSRF_COOKIE}={seed}{cookie_flags}".encode()))
                pending = state.get("flash_out")
                if pending:
                    value = self.flash_signer.dumps(pending)
                    headers.append((b"set-cookie", f"{FLASH_COOKIE}={value}{cookie_flags}".encode()))
                elif state.get("clear_flash_cookie"):
                    headers.append((b"set-cookie", f"{FLASH_COOKIE}=; Max-Age=0{cookie_flags}".encode()))
            await send(message)

        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdecimal() and int(declared) > MAX_BODY_BYTES:
            await error_page(request, 413)(scope, receive, send_wrapper)
            return
        if b"%00" in scope.get("query_string", b""):  # NUL: no parameter has it, PostgreSQL cannot store it
            await error_page(request, 400)(scope, receive, send_wrapper)
            return
        if "\x00" in scope.get("path", ""):  # no page's address has it either
            await error_page(request, 404)(scope, receive, send_wrapper)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited_receive, send_wrapper)


@functools.lru_cache(maxsize=64)
def _encoded_security_headers(secure: bool, csp: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """``security_headers`` as ASGI header pairs, built once per (secure, CSP): every response adds them."""
    return tuple((name.lower().encode(), value.encode()) for name, value in security_headers(secure, csp).items())


def security_headers(secure: bool, csp: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": csp
        or (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


# ---------------------------------------------------------------- error pages


JSON_PATHS: tuple[str, ...] = ("/api/",)  # the default; ``app.state.json_paths`` lists the app's own


def wants_json(request: Request) -> bool:
    """JSON for programs: the ``/api/`` paths and the protocol endpoints (``app.state.json_paths``,
    e.g. ``/token``: an OAuth client reads JSON errors), or a client that asks for JSON only."""
    app = request.scope.get("app")
    paths: tuple[str, ...] = getattr(app.state, "json_paths", JSON_PATHS) if app is not None else JSON_PATHS
    path = request.url.path
    if any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in paths):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def json_error(
    error: str, description: str, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The error shape of every JSON API: ``{"error": code, "error_description": text}``."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers={"Cache-Control": "no-store", **dict(headers or {})},
    )


_HTTP_MESSAGES = {
    400: ("invalid_request", N_("La demande est invalide.")),
    401: ("unauthorized", N_("Vous devez vous connecter.")),
    403: ("forbidden", N_("Vous n’avez pas accès à cette page.")),
    404: ("not_found", N_("Cette page n’existe pas.")),
    405: ("method_not_allowed", N_("Cette méthode n’est pas permise ici.")),
    413: ("invalid_request", N_("La demande est trop volumineuse.")),
    429: ("too_many_requests", N_("Trop de demandes. Veuillez patienter un moment.")),
    503: (
        "temporarily_unavailable",
        N_("Portail est momentanément indisponible. Veuillez réessayer dans quelques instants."),
    ),
}


def error_page(request: Request, status_code: int, message: str | None = None) -> Response:
    code, default = _HTTP_MESSAGES.get(status_code, ("server_error", N_("Une erreur est survenue.")))
    text = message or _(request, default)
    if wants_json(request):
        return json_error(code, text, status_code)
    return render(request, "error.html", {"status_code": status_code, "message": text}, status_code=status_code)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail != _default_phrase(exc.status_code) else None
    response = error_page(request, exc.status_code, detail)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def _default_phrase(status_code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


async def server_error_handler(request: Request, exc: Exception) -> Response:
    from portail.web.outage import is_database_outage, unavailable

    if is_database_outage(exc):
        return unavailable(request)
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500)
