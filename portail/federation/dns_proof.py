"""The DNS TXT proof of control of a node's domain: the hoster publishes the node's challenge token
as a TXT record at ``_portail-challenge.<host>`` (the host of its base URL, IDNA-encoded), and
Portail asks the configured resolvers (``dns_resolvers``; the system's when empty) with dnspython,
under ``dns_timeout_seconds`` for the whole question, retries and TCP fallback included.

What counts (the rules of RFC 8555 §8.4, ACME's ``dns-01``, where they apply):

- the record is at the name itself: an alias (CNAME) to another name is refused, since the proof
  would then be about whoever runs that other name;
- a record made of several character-strings is read as their concatenation (RFC 7208 §3.3 does
  the same for SPF), surrounding spaces ignored;
- several TXT records may exist (two nodes on one host under different paths share the name, and a
  record is often added before the old one is removed): the proof holds when one of them is the
  token; when none is, the message says how many were found;
- an answer with more than ``MAX_RECORDS`` records or ``MAX_TEXT_BYTES`` of text is refused unread.

Every failure raises ``Refused`` (``portail.outbound``) with a stable ``code`` (``dns-timeout``,
``dns-nxdomain``, ``dns-no-txt``, ``dns-cname``, ``dns-mismatch``, ``dns-too-large``…) and a French
source message translated where it is shown. Checking the DNS proof does not relax the SSRF guard:
the node's address is still checked like any hoster URL (``proof.check``).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from portail.config import Settings
from portail.outbound import Refused

PREFIX = "_portail-challenge"
MAX_RECORDS = 20
MAX_TEXT_BYTES = 4096
TTL_HINT = 300  # the TTL suggested in the record shown to the hoster


@dataclass(frozen=True)
class RecordName:
    """Where the TXT record goes: ``ascii`` (what the DNS holds) and ``unicode`` (what people read)."""

    ascii: str
    unicode: str

    def zone_line(self, token: str) -> str:
        """The record as a zone-file line, ready to paste."""
        return f'{self.ascii}. {TTL_HINT} IN TXT "{token}"'


def host_of(base_url: str) -> str:
    return (urlsplit(base_url).hostname or "").rstrip(".")


def record_name(base_url: str) -> RecordName:
    """``_portail-challenge.<host>`` for the base URL's host; raises ``Refused`` when the host cannot
    carry a DNS record (an IP address, an invalid international name, a name too long)."""
    host = host_of(base_url)
    if not host:
        raise Refused("dns-name", "L’adresse %(url)s n’a pas de nom d’hôte.", url=base_url[:200])
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise Refused(
            "dns-ip",
            "%(host)s est une adresse IP : la preuve par DNS demande un nom de domaine. Utilisez la preuve HTTP.",
            host=host,
        )
    try:
        name = dns.name.from_unicode(f"{PREFIX}.{host}")
        readable = name.to_unicode(omit_final_dot=True)
    except dns.name.IDNAException as exc:
        raise Refused(
            "dns-idna", "%(host)s n’est pas un nom de domaine international valide (IDNA).", host=host[:200]
        ) from exc
    except (dns.name.LabelTooLong, dns.name.NameTooLong) as exc:
        raise Refused("dns-name", "Le nom %(host)s est trop long pour le DNS.", host=host[:200]) from exc
    except dns.exception.DNSException as exc:
        raise Refused("dns-name", "Le nom %(host)s n’est pas un nom DNS valide.", host=host[:200]) from exc
    return RecordName(ascii=name.to_text(omit_final_dot=True), unicode=readable)


def record_text(strings: tuple[bytes, ...] | list[bytes]) -> str:
    """One TXT record's value: its character-strings concatenated, surrounding spaces ignored."""
    return b"".join(strings).decode("utf-8", errors="replace").strip()


def judge(name: str, token: str, records: list[str]) -> None:
    """Decide on the TXT values found at ``name``; raises ``Refused`` unless one of them is ``token``."""
    if len(records) > MAX_RECORDS or sum(len(r.encode()) for r in records) > MAX_TEXT_BYTES:
        raise Refused(
            "dns-too-large",
            "La réponse DNS pour %(name)s est trop grande (%(count)s enregistrements TXT) : "
            "laissez-y seulement le jeton.",
            name=name,
            count=len(records),
        )
    values = [r for r in records if r]
    if not values:
        raise Refused("dns-empty", "L’enregistrement TXT à %(name)s est vide : mettez-y le jeton.", name=name)
    if any(hmac.compare_digest(v.encode(), token.encode()) for v in values):
        return
    if len(values) == 1:
        raise Refused(
            "dns-mismatch",
            "L’enregistrement TXT à %(name)s ne correspond pas au jeton attendu.",
            name=name,
        )
    raise Refused(
        "dns-mismatch",
        "%(name)s a %(count)s enregistrements TXT et aucun n’est le jeton attendu.",
        name=name,
        count=len(values),
    )


def resolver_for(settings: Settings) -> dns.asyncresolver.Resolver:
    """A resolver asking ``dns_resolvers`` (the system's when empty), under ``dns_timeout_seconds``."""
    servers = settings.dns_nameservers
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in servers]
    else:
        resolver = dns.asyncresolver.Resolver(configure=True)
    resolver.lifetime = resolver.timeout = max(0.1, settings.dns_timeout_seconds)
    resolver.use_search_by_default = False
    return resolver


async def lookup(settings: Settings, name: str) -> list[str]:
    """The TXT values at ``name`` (no alias followed); raises ``Refused`` on every DNS failure."""
    resolver = resolver_for(settings)
    qname = dns.name.from_text(name)
    try:
        async with asyncio.timeout(settings.dns_timeout_seconds + 1):
            answer = await resolver.resolve(qname, dns.rdatatype.TXT, search=False, raise_on_no_answer=False)
    except (dns.resolver.LifetimeTimeout, TimeoutError) as exc:
        raise Refused(
            "dns-timeout",
            "Le DNS n’a pas répondu pour %(name)s en %(seconds)s s. Réessayez plus tard.",
            name=name,
            seconds=f"{settings.dns_timeout_seconds:g}",
        ) from exc
    except dns.resolver.NXDOMAIN as exc:
        _no_alias(name, qname, exc.canonical_name)
        raise Refused(
            "dns-nxdomain",
            "Le nom %(name)s n’existe pas dans le DNS (NXDOMAIN) : créez-y l’enregistrement TXT.",
            name=name,
        ) from exc
    except dns.resolver.NoNameservers as exc:
        raise Refused(
            "dns-servfail",
            "Aucun serveur DNS n’a pu répondre pour %(name)s (SERVFAIL ou refus). Vérifiez la zone.",
            name=name,
        ) from exc
    except dns.message.Truncated as exc:
        raise Refused("dns-too-large", "La réponse DNS pour %(name)s est trop grande.", name=name, count="?") from exc
    except dns.exception.DNSException as exc:
        raise Refused(
            "dns-error", "La question DNS pour %(name)s a échoué (%(error)s).", name=name, error=type(exc).__name__
        ) from exc
    _no_alias(name, qname, answer.canonical_name)
    if answer.rrset is None:
        raise Refused("dns-no-txt", "Le nom %(name)s existe mais n’a aucun enregistrement TXT.", name=name)
    return [record_text(list(rdata.strings)) for rdata in answer.rrset]


def _no_alias(name: str, qname: dns.name.Name, canonical: dns.name.Name) -> None:
    if canonical != qname:
        raise Refused(
            "dns-cname",
            "%(name)s est un alias (CNAME) vers %(target)s : créez l’enregistrement TXT à %(name)s même.",
            name=name,
            target=canonical.to_text(omit_final_dot=True)[:255],
        )


async def check(settings: Settings, base_url: str, token: str) -> None:
    """Raises ``Refused`` unless ``_portail-challenge.<host>`` holds ``token``."""
    name = record_name(base_url).ascii
    judge(name, token, await lookup(settings, name))
