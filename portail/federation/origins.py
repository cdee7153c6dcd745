"""The normalized origin of a node's base URL: the key two registrations are compared on.

Two base URLs name the same node when their keys are equal. The key is
``scheme://host[:port]/path`` where

- the scheme is lower-cased and the port dropped when it is the scheme's default (``:08410`` is 8410);
- the host is lower-cased, IDNA-encoded (``café.example`` = ``xn--caf-dma.example``), without the
  trailing dot of a fully-qualified name (``host.`` = ``host``), an IPv4-mapped IPv6 address is its
  IPv4 address (``[::ffff:127.0.0.1]`` = ``127.0.0.1``), and every loopback name or address
  (``localhost``, ``127.0.0.0/8``, ``[::1]``) is ``localhost``;
- the path has its dot segments resolved and no trailing slash (``/.``, ``/`` and ``""`` are the same),
  query and fragment dropped.

The key is stored in ``Instance.origin_key`` (indexed), so a duplicate is one indexed lookup.
"""

from __future__ import annotations

import ipaddress
import posixpath
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK = "localhost"


def _host(raw: str) -> str:
    host = raw.strip("[]").rstrip(".").lower()
    if host == LOOPBACK or host.endswith(".localhost"):
        return LOOPBACK
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.encode("idna").decode("ascii")  # UnicodeError (a ValueError) when not a valid name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return LOOPBACK
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def origin_key(url: str) -> str:
    """The normalized origin and path of ``url``; raises ``ValueError`` when it cannot be read."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    if not scheme or not host:
        raise ValueError(url)
    port = parts.port  # ValueError when out of range or not a number
    netloc = host if port is None or port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = posixpath.normpath(parts.path) if parts.path else ""
    path = "" if path in ("/", ".", "//") else path.rstrip("/")
    return f"{scheme}://{netloc}{path}"
