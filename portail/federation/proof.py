"""Proof of control of a node's domain, by one of two methods the hoster chooses:

- ``http``: the challenge token served as text/plain at ``{base_url}/.well-known/portail-challenge``,
  fetched through the SSRF guard (``verification.fetch_challenge``);
- ``dns``: the token in a TXT record at ``_portail-challenge.<host>`` (``dns_proof``). The node's
  address is still checked by the SSRF guard first, so the DNS method is no way around it: a host
  that resolves to a private or loopback address is refused as for HTTP (a name that does not
  resolve yet is let through, as at registration: health probes will find it down).

Both raise ``Refused`` with a stable code and a French source message.
"""

from __future__ import annotations

from typing import Any

from portail.config import Settings
from portail.federation import dns_proof, verification
from portail.federation.rules import FederationError
from portail.federation.verification import Refused

METHODS = ("http", "dns")


def method_of(raw: str | None, default: str = "http") -> str:
    """The method named in a form, a body or a command (``default`` when empty); refuses others."""
    method = (raw or "").strip().lower() or default
    if method not in METHODS:
        raise FederationError("Méthode de preuve inconnue : choisissez http ou dns.", code="invalid_request")
    return method


def where(method: str, base_url: str) -> str:
    """Where the proof is looked for: the challenge URL or the TXT record's name (the base URL itself
    when its host cannot carry a TXT record: the refusal then names it)."""
    if method == "dns":
        try:
            return dns_proof.record_name(base_url).ascii
        except Refused:
            return base_url
    return verification.challenge_url(base_url)


async def check(settings: Settings, method: str, base_url: str, token: str) -> None:
    """Raises ``Refused`` unless the node proves control of ``base_url`` with ``token`` by ``method``."""
    if method == "dns":
        try:
            await verification.check_url(base_url, settings)
        except Refused as exc:
            if exc.code != "dns":
                raise
        await dns_proof.check(settings, base_url, token)
    else:
        await verification.fetch_challenge(settings, base_url, token)


def instructions(base_url: str, token: str) -> dict[str, Any]:
    """What the hoster publishes, for either method (the page and the API show both)."""
    found: dict[str, Any] = {"token": token, "http": {"url": verification.challenge_url(base_url)}}
    try:
        name = dns_proof.record_name(base_url)
    except Refused as exc:
        found["dns"] = {"unavailable": {"code": exc.code, "message": exc.message, "params": exc.params}}
    else:
        found["dns"] = {
            "name": name.ascii,
            "unicode_name": name.unicode,
            "type": "TXT",
            "value": token,
            "zone_line": name.zone_line(token),
        }
    return found
