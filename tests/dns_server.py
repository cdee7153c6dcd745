"""A real DNS server on 127.0.0.1 (UDP and TCP on one port) with programmable answers, built on
dnslib, standing in for a hoster's zone in tests of the DNS TXT proof:
``server.txt("_portail-challenge.node.test", "portail-…")``.

A name can hold TXT records (each a list of character-strings), be an alias (``cname``), answer
SERVFAIL (``fail``) or nothing at all (``silent``: the client times out); an unknown name answers
NXDOMAIN; a name with ``exists`` and no TXT answers NOERROR with an empty answer. UDP answers over
512 bytes are truncated (TC), so a client retries over TCP as a real resolver makes it. Questions
are recorded in ``server.questions``.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


@dataclass
class Entry:
    txt: list[list[bytes]] = field(default_factory=list)
    cname: str | None = None
    fail: bool = False
    silent: bool = False


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: LoopbackDNS) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        self.server.questions.append((qname, QTYPE[request.q.qtype]))
        name, seen = qname, 0
        while True:
            entry = self.server.entries.get(name)
            if entry is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if entry.silent:
                raise DNSError("silent")  # no answer: the client waits until its timeout
            if entry.fail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if entry.cname is not None and seen < 5:
                reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(entry.cname + "."), ttl=60))
                name, seen = entry.cname.rstrip(".").lower(), seen + 1
                continue
            if request.q.qtype == QTYPE.TXT:
                for strings in entry.txt:
                    reply.add_answer(RR(name + ".", QTYPE.TXT, rdata=TXT(strings), ttl=60))
            return reply


class _Handler(DNSHandler):  # type: ignore[misc]
    """Truncates UDP answers over 512 bytes keeping the question (dnslib's own ``truncate`` drops it,
    which a client rightly rejects as an answer to another question)."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            short = request.reply()
            short.header.tc = 1
            packed = short.pack()
        return packed


class LoopbackDNS:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.questions: list[tuple[str, str]] = []
        logger = DNSLogger(logf=lambda _line: None)
        zone = _Zone(self)
        for _attempt in range(20):
            udp = DNSServer(zone, address="127.0.0.1", port=0, handler=_Handler, logger=logger)
            self.port = udp.server.server_address[1]
            try:
                tcp = DNSServer(zone, address="127.0.0.1", port=self.port, tcp=True, handler=_Handler, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            break
        else:  # pragma: no cover
            raise RuntimeError("no free port for the loopback DNS server")
        self.servers = [udp, tcp]
        for server in self.servers:
            threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def resolvers(self) -> str:
        """The ``dns_resolvers`` setting that asks this server."""
        return f"127.0.0.1:{self.port}"

    def _entry(self, name: str) -> Entry:
        return self.entries.setdefault(name.rstrip(".").lower(), Entry())

    def txt(self, name: str, *values: str | list[str]) -> None:
        """Replace the TXT records at ``name``: each value a string or a list of character-strings."""
        entry = self._entry(name)
        entry.cname, entry.fail, entry.silent = None, False, False
        entry.txt = [[s.encode() for s in ([v] if isinstance(v, str) else v)] for v in values]

    def exists(self, name: str) -> None:
        """``name`` exists without TXT records (NOERROR, empty answer)."""
        self.txt(name)

    def cname(self, name: str, target: str) -> None:
        self._entry(name).cname = target

    def fail(self, name: str) -> None:
        self._entry(name).fail = True

    def silent(self, name: str) -> None:
        self._entry(name).silent = True

    def remove(self, name: str) -> None:
        self.entries.pop(name.rstrip(".").lower(), None)

    def clear(self) -> None:
        self.entries.clear()
        self.questions.clear()

    def stop(self) -> None:
        for server in self.servers:
            server.server.shutdown()
            server.server.server_close()


def free_udp_port() -> int:
    """A port nothing answers on (a resolver that never replies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
