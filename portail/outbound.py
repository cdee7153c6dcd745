"""The outbound guard: every request to a URL that a hoster, a tool or a member supplied goes through it.

Used by the federation (domain proof, health probes), the notification hub (pulls from instances),
consent (Security Event Tokens to tools) and the OpenID Connect provider (back-channel logout to
dynamically registered and hoster-provisioned clients). It lives below all of them (it needs only
``config`` and ``web``'s message marker) so that each can use it without importing the others.

- accepts ``https://`` only (``http://`` too when ``allow_http_instances``), refuses credentials
  (``user:pass@``) and fragments;
- resolves the host itself and refuses loopback, private, shared, link-local, multicast, reserved and
  cloud metadata addresses (169.254.169.254, fd00:ec2::254…) unless ``allow_private_addresses``
  (metadata, multicast and unspecified addresses are refused even then); IPv4-mapped, 6to4 and NAT64
  IPv6 addresses are judged by the IPv4 address they carry;
- connects to the very address it checked (``PinnedTransport`` rewrites the request to the IP and
  keeps the host name for the ``Host`` header and for TLS SNI and certificate checks), so a DNS
  answer that changes between check and connect (DNS rebinding) cannot redirect the request;
- ``fetch`` follows at most ``MAX_REDIRECTS`` redirects itself, re-checking each target the same way;
  reads at most ``outbound_max_bytes`` (decoded) and gives up after ``outbound_timeout_seconds`` for
  the whole exchange, redirects included; never uses proxies from the environment.

A refusal raises ``Refused`` whose ``message`` is a French source string (translated by the caller)
and ``code`` a stable identifier (``dns``, ``scheme``, ``address-loopback``…).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from portail.config import Settings
from portail.web import N_

MAX_REDIRECTS = 3
USER_AGENT = "Portail-EnCommun/1 (+federation registry)"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """An outbound request Portail will not make (or whose answer it will not read)."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(f"{code}: {message % params if params else message}")
        self.code = code
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_ms: int

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- URL syntax


def check_syntax(url: str, settings: Settings) -> str:
    """Refuse what is not an absolute http(s) URL fit to fetch; returns its host name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("invalid", "L’adresse %(url)s est invalide.", url=url[:200]) from exc
    allowed = ("https", "http") if settings.allow_http_instances else ("https",)
    if parts.scheme not in allowed:
        if parts.scheme == "http":
            raise Refused("scheme", "L’adresse doit commencer par https:// (http:// est refusé).")
        raise Refused("scheme", "Seules les adresses https:// sont acceptées.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("credentials", "L’adresse ne doit pas contenir d’identifiants (utilisateur:mot de passe@).")
    if parts.fragment or url.endswith("#"):
        raise Refused("fragment", "L’adresse ne doit pas contenir de fragment (#…).")
    host = parts.hostname or ""
    if not host or len(url) > 1000 or any(c.isspace() or ord(c) < 32 for c in url) or port == 0:
        raise Refused("invalid", "L’adresse %(url)s est invalide.", url=url[:200])
    return host


# ---------------------------------------------------------------- addresses


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why Portail must not connect to ``address`` (``None`` when it may)."""
    candidate = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES or candidate in METADATA_ADDRESSES:
        return "metadata"
    if candidate.is_multicast or candidate.is_unspecified:
        return "reserved"
    if (candidate.is_global and not candidate.is_reserved) or allow_private:
        return None
    if candidate.is_loopback:
        return "loopback"
    if candidate.is_link_local:
        return "link-local"
    if candidate.is_reserved:
        return "reserved"
    return "private"


_ADDRESS_MESSAGES = {
    "loopback": N_(
        "%(host)s mène à une adresse de boucle locale (%(address)s). Portail ne contacte que des serveurs publics."
    ),
    "private": N_(
        "%(host)s mène à une adresse de réseau privé (%(address)s). Portail ne contacte que des serveurs publics."
    ),
    "link-local": N_(
        "%(host)s mène à une adresse de lien local (%(address)s). Portail ne contacte que des serveurs publics."
    ),
    "metadata": N_(
        "%(host)s mène à l’adresse d’un service de métadonnées infonuagique (%(address)s), toujours refusée."
    ),
    "reserved": N_("%(host)s mène à une adresse réservée ou de multidiffusion (%(address)s), toujours refusée."),
}


async def resolve(host: str, port: int, settings: Settings) -> str:
    """Resolve ``host`` and check every address it has; returns the address to connect to."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused("dns", "Le nom %(host)s ne se résout pas.", host=host) from exc
        addresses = []
        for info in infos:
            raw = str(info[4][0]).split("%", 1)[0]
            addresses.append(ipaddress.ip_address(raw))
        if not addresses:
            raise Refused("dns", "Le nom %(host)s ne se résout pas.", host=host)
    for address in addresses:
        problem = address_problem(address, allow_private=settings.allow_private_addresses)
        if problem is not None:
            raise Refused(f"address-{problem}", _ADDRESS_MESSAGES[problem], host=host, address=str(address))
    return str(addresses[0])


async def check_url(url: str, settings: Settings) -> None:
    """Syntax and address checks without fetching (used when a URL is entered)."""
    host = check_syntax(url, settings)
    parts = urlsplit(url)
    await resolve(host, parts.port or (443 if parts.scheme == "https" else 80), settings)


# ---------------------------------------------------------------- pinned transport


@functools.cache
def _system_tls(verify: bool) -> ssl.SSLContext:
    """The TLS context of outbound requests that trust the system's authorities: one per process, as
    loading those authorities costs tens of milliseconds (every application, and every ``client``)."""
    return httpx.create_ssl_context(verify=verify)


class PinnedTransport(httpx.AsyncBaseTransport):
    """Checks each request's host and connects to the checked address, not to a new DNS answer.

    Connections are pooled per host name (one inner transport each, sharing one TLS context, which
    is costly to build), so a TLS connection verified for one name is never reused for another name
    that happens to resolve to the same address.
    """

    def __init__(self, settings: Settings, verify: ssl.SSLContext | bool = True) -> None:
        self.settings = settings
        self.tls = verify if isinstance(verify, ssl.SSLContext) else _system_tls(verify)
        self.pools: dict[tuple[str, str, int], httpx.AsyncHTTPTransport] = {}

    def _pool(self, scheme: str, host: str, port: int) -> httpx.AsyncHTTPTransport:
        key = (scheme, host.lower(), port)
        if key not in self.pools:
            self.pools[key] = httpx.AsyncHTTPTransport(retries=0, verify=self.tls)
        return self.pools[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        check_syntax(str(request.url), self.settings)
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        address = await resolve(host, port, self.settings)
        extensions = dict(request.extensions)
        if request.url.scheme == "https" and address != host:
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # keeps Host: <name>
            stream=request.stream,
            extensions=extensions,
        )
        return await self._pool(request.url.scheme, host, port).handle_async_request(pinned)

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()
        self.pools.clear()


def client(settings: Settings, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An HTTP client for instance URLs: pinned, no redirects, no environment proxies. ``verify``
    replaces the system's certificate authorities (tests)."""
    timeout = httpx.Timeout(settings.outbound_timeout_seconds)
    return httpx.AsyncClient(
        transport=PinnedTransport(settings, verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def fetch(
    settings: Settings,
    url: str,
    *,
    accept: str = "*/*",
    max_bytes: int | None = None,
    http: httpx.AsyncClient | None = None,
) -> Fetched:
    """GET ``url`` through the guard; raises ``Refused`` for every refusal or failure."""
    limit = settings.outbound_max_bytes if max_bytes is None else max_bytes
    started = time.monotonic()
    own = http is None
    http = http or client(settings)
    try:
        async with asyncio.timeout(settings.outbound_timeout_seconds):
            return await _follow(settings, http, url, accept, limit, started)
    except TimeoutError as exc:
        raise Refused(
            "timeout",
            "Le serveur n’a pas répondu à temps (%(seconds)s s).",
            seconds=f"{settings.outbound_timeout_seconds:g}",
        ) from exc
    finally:
        if own:
            await http.aclose()


async def _follow(
    settings: Settings, http: httpx.AsyncClient, url: str, accept: str, limit: int, started: float
) -> Fetched:
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        host = check_syntax(current, settings)
        try:
            async with http.stream("GET", current, headers={"Accept": accept}) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if hop == MAX_REDIRECTS:
                        raise Refused("redirects", "Trop de redirections (plus de %(max)s).", max=MAX_REDIRECTS)
                    current = urljoin(current, location)
                    continue
                body = await _read_capped(response, limit)
                return Fetched(
                    url=current,
                    status=response.status_code,
                    headers=response.headers,
                    body=body,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                )
        except httpx.TimeoutException as exc:
            raise Refused(
                "timeout",
                "Le serveur n’a pas répondu à temps (%(seconds)s s).",
                seconds=f"{settings.outbound_timeout_seconds:g}",
            ) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise Refused("unreachable", "Connexion impossible à %(host)s.", host=host) from exc
    raise Refused("redirects", "Trop de redirections (plus de %(max)s).", max=MAX_REDIRECTS)  # pragma: no cover


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused("too-large", "La réponse dépasse %(max)s octets.", max=limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise Refused("too-large", "La réponse dépasse %(max)s octets.", max=limit)
        chunks.append(chunk)
    return b"".join(chunks)
