"""CHATONS StatoolInfos files (``.properties``): the field tables of the specification, writing and
reading the Java ``.properties`` format, and checking a file against the tables.

Specification: StatoolInfos ``GENERAL.md`` (forge.devinsy.fr/statool/statoolinfos) — primitive types
(DATE ``2020-07-06``, DATETIME ``2020-07-06T14:23:20``, EMAIL ``^.+@.+$``, URL ``^https?://.+\\..+``,
VALUE / VALUES separated by ``;``) and the sections' fields, mandatory or not; the value sets are those
of the ChatonsInfos templates (``organization.type``, ``organization.status.level``,
``organization.memberof.<federation>.*``, ``service.registration``, ``service.registration.load``,
``service.install.type``, ``host.provider.type``, ``host.server.type``).

Escaping follows ``java.util.Properties``: a backslash, a line break, a tab or a form feed is written
as ``\\\\``, ``\\n``, ``\\t``, ``\\f`` (one value per line; StatoolInfos STRINGs carry line breaks as
``\\n``); a value's leading space as ``\\ ``; a character outside Latin-1 (``’``, emoji) as ``\\uXXXX``
(UTF-16 units), the form Java needs for what ISO-8859-1 cannot hold. ``=`` and ``:`` inside a value
are kept as they are: Java splits a line on its *first* separator only, so they cannot end the key,
and the CHATONS crawler reads URLs verbatim (``https\\://`` would break every link). A key is a dotted
slug and never needs escaping; ``key()`` refuses one that would. ``parse()`` is the reader the tests
use: a line-oriented Java ``.properties`` reader (continuation lines, both separators, escapes).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

PROTOCOL = "ChatonsInfos-0.5"
GENERATOR = "Portail En commun"

ORGANIZATION_TYPES = ("ASSOCIATION", "INFORMAL", "COOPERATIVE", "MICROCOMPANY", "COMPANY", "INDIVIDUAL", "OTHER")
MEMBER_LEVELS = ("ACTIVE", "IDLE", "AWAY")
SERVICE_LEVELS = ("OK", "WARNING", "ALERT", "ERROR", "OVER", "VOID")
REGISTRATIONS = ("None", "Free", "Member", "Client")
LOADS = ("OPEN", "FULL")
INSTALL_TYPES = ("DISTRIBUTION", "PROVIDER", "PACKAGE", "TOOLING", "CLONE")
PROVIDER_TYPES = ("HOME", "HOSTEDBAY", "HOSTEDSERVER", "OUTSOURCED")
SERVER_TYPES = ("NANO", "PHYSICAL", "VIRTUAL", "SHARED", "CLOUD")


@dataclass(frozen=True)
class Field:
    key: str  # "{fed}" stands for the federation's identifier (organization.memberof.{fed}.startdate)
    type: str  # STRING, URL, EMAIL, DATE, DATETIME, VALUE (one of ``values``), VALUES (``;``-separated)
    mandatory: bool = False
    values: tuple[str, ...] = ()


def _f(key: str, kind: str = "STRING", mandatory: bool = False, values: tuple[str, ...] = ()) -> Field:
    return Field(key, kind, mandatory, values)


FILE = [
    _f("file.class", "VALUE", True, ("federation", "organization", "service")),
    _f("file.protocol", mandatory=True),
    _f("file.datetime", "DATETIME", True),
    _f("file.generator", mandatory=True),
    _f("file.url", "URL", True),
]
TABLES: dict[str, list[Field]] = {
    "federation": [
        *FILE,
        _f("federation.name", mandatory=True),
        _f("federation.description", mandatory=True),
        _f("federation.website", "URL", True),
        _f("federation.logo", "URL"),
        _f("federation.contact.url", "URL"),
        _f("federation.contact.email", "EMAIL", True),
        _f("federation.legal.url", "URL"),
        _f("federation.startdate", "DATE", True),
        _f("federation.country.name"),
        _f("federation.country.code"),
    ],
    "organization": [
        *FILE,
        _f("organization.name", mandatory=True),
        _f("organization.description", mandatory=True),
        _f("organization.type", "VALUE", True, ORGANIZATION_TYPES),
        _f("organization.status.level", "VALUE", True, MEMBER_LEVELS),
        _f("organization.status.description"),
        _f("organization.website", "URL", True),
        _f("organization.logo", "URL"),
        _f("organization.contact.url", "URL"),
        _f("organization.contact.email", "EMAIL", True),
        _f("organization.legal.url", "URL"),
        _f("organization.startdate", "DATE", True),
        _f("organization.enddate", "DATE"),
        _f("organization.memberof.{fed}.startdate", "DATE", True),
        _f("organization.memberof.{fed}.enddate", "DATE"),
        _f("organization.memberof.{fed}.status.level", "VALUE", True, MEMBER_LEVELS),
        _f("organization.memberof.{fed}.status.description"),
        _f("organization.country.name"),
        _f("organization.country.code"),
        _f("organization.geography"),
    ],
    "service": [
        *FILE,
        _f("service.name", mandatory=True),
        _f("service.description", mandatory=True),
        _f("service.website", "URL", True),
        _f("service.logo", "URL"),
        _f("service.contact.email", "EMAIL"),
        _f("service.legal.url", "URL"),
        _f("service.guide.user", "URL"),
        _f("service.startdate", "DATE", True),
        _f("service.enddate", "DATE"),
        _f("service.status.level", "VALUE", True, SERVICE_LEVELS),
        _f("service.status.description"),
        _f("service.registration", "VALUES", True, REGISTRATIONS),
        _f("service.registration.load", "VALUE", True, LOADS),
        _f("service.install.type", "VALUE", True, INSTALL_TYPES),
        _f("software.name", mandatory=True),
        _f("software.website", "URL"),
        _f("software.license.url", "URL"),
        _f("software.license.name", mandatory=True),
        _f("software.version"),
        _f("software.source.url", "URL"),
        _f("host.name", mandatory=True),
        _f("host.description"),
        _f("host.provider", mandatory=True),
        _f("host.provider.type", "VALUE", True, PROVIDER_TYPES),
        _f("host.server.type", "VALUE", True, SERVER_TYPES),
        _f("host.country.name", mandatory=True),
        _f("host.country.code", mandatory=True),
    ],
}
SUBS = re.compile(r"^subs\.[a-z0-9][a-z0-9_-]*$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")


def table(kind: str, federation_id: str) -> dict[str, Field]:
    """The fields of a file class, ``{fed}`` replaced by the federation's identifier."""
    return {f.key.replace("{fed}", federation_id): f for f in TABLES[kind]}


# ---------------------------------------------------------------- writing


def key(name: str) -> str:
    """A key as written: dotted lowercase slugs only (never needs escaping)."""
    if not _KEY.match(name):
        raise ValueError(f"not a StatoolInfos key: {name!r}")
    return name


def escape(value: object) -> str:
    """A value in the Java ``.properties`` form (see the module's docstring)."""
    out: list[str] = []
    for i, char in enumerate(str(value)):
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "\f":
            out.append("\\f")
        elif char == " " and i == 0:
            out.append("\\ ")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\u{code:04x}")
        elif code > 0xFF:
            units = char.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(units[j : j + 2], 'big'):04x}" for j in range(0, len(units), 2))
        else:
            out.append(char)
    return "".join(out)


Pairs = list[tuple[str, object]]


def render(sections: list[tuple[str, Pairs]]) -> str:
    """Sections of ``key = value`` lines under ``# [Title]`` comments; empty values are left out."""
    lines: list[str] = []
    for title, pairs in sections:
        lines.append(f"# [{title}]")
        lines.extend(f"{key(k)} = {escape(v)}" for k, v in pairs if v not in (None, ""))
        lines.append("")
    return "\n".join(lines)


def date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    return (value.date() if isinstance(value, dt.datetime) else value).isoformat()


def now() -> str:
    """DATETIME (``2020-07-06T14:23:20``), UTC, without zone as the specification writes it."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()


def file_section(kind: str, url: str) -> tuple[str, Pairs]:
    return "File", [
        ("file.class", kind),
        ("file.protocol", PROTOCOL),
        ("file.datetime", now()),
        ("file.generator", GENERATOR),
        ("file.url", url),
    ]


# ---------------------------------------------------------------- reading and checking

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            out.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f") if pending else raw
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # an odd number of backslashes: the line goes on
            pending += line[:-1]
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def parse(text: str) -> dict[str, str]:
    """Read ``.properties`` text as ``java.util.Properties.load(Reader)`` does."""
    found: dict[str, str] = {}
    for line in _logical_lines(text):
        stripped = line.lstrip(" \t\f")
        if not stripped or stripped[0] in "#!":
            continue
        i = 0
        while i < len(stripped) and stripped[i] not in "=: \t\f":
            i += 2 if stripped[i] == "\\" else 1
        name, rest = stripped[:i], stripped[i:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        found[_unescape(name)] = _unescape(rest)
    return found


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def valid_url(value: str) -> bool:
    parts = urlsplit(value)
    shaped = re.match(r"^https?://.+\..+", value) is not None  # the specification's URL pattern
    return parts.scheme in ("http", "https") and bool(parts.hostname) and shaped


def valid_email(value: str) -> bool:
    return _EMAIL.match(value) is not None


def _valid(f: Field, value: str) -> bool:
    if f.type == "URL":
        return valid_url(value)
    if f.type == "EMAIL":
        return _EMAIL.match(value) is not None
    if f.type in ("DATE", "DATETIME"):
        if not (_DATE if f.type == "DATE" else _DATETIME).match(value):
            return False
        try:
            (dt.date if f.type == "DATE" else dt.datetime).fromisoformat(value)
        except ValueError:
            return False
        return True
    if f.type == "VALUE":
        return value.lower() in {v.lower() for v in f.values} if f.key == "file.class" else value in f.values
    if f.type == "VALUES":
        items = value.split(";")
        return bool(items) and all(item in f.values for item in items)
    return "\n" not in value or f.type == "STRING"


def problems(kind: str, props: dict[str, str], federation_id: str) -> list[str]:
    """What makes ``props`` fail the field table of ``kind``: missing mandatory keys, values of the
    wrong type or outside their set, unknown keys (``subs.*`` allowed in federation and
    organization files). Empty list: the file is valid."""
    fields = table(kind, federation_id)
    found: list[str] = []
    for name, f in fields.items():
        if f.mandatory and not props.get(name, "").strip():
            found.append(f"missing {name}")
    for name, value in props.items():
        if kind != "service" and SUBS.match(name):
            if not valid_url(value):
                found.append(f"bad URL in {name}")
            continue
        spec = fields.get(name)
        if spec is None:
            found.append(f"unknown key {name}")
        elif value and not _valid(spec, value):
            found.append(f"bad {spec.type} in {name}: {value!r}")
    if props.get("file.class", "").lower() != kind:
        found.append(f"file.class is not {kind}")
    return found
