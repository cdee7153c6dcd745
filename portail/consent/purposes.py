"""Optional purposes: uses of a member's data beyond logging in, each asked separately (Law 25).

Purposes are configuration: ``[[purposes]]`` tables in ``instances.toml`` (the file named by the
``instances_file`` setting), each with a ``key``, a title and a description in French and English,
and optionally the ``instances`` (slugs) it concerns. Every purpose is **off** until the member turns
it on; turning one on or off writes a ``ConsentEvent`` with ``purpose = <key>`` (``client_id`` empty)
to the ledger, and the latest event of a purpose is its state. Features that depend on a purpose ask
``is_granted(db, member_id, key)``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from portail.accounts import policy as accounts_policy
from portail.config import Settings
from portail.consent.errors import ConsentError
from portail.oidc.models import ConsentEvent

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class Purpose:
    key: str
    title_fr: str
    title_en: str
    description_fr: str
    description_en: str
    instances: tuple[str, ...] = field(default_factory=tuple)

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_fr

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" else self.description_fr


@dataclass(frozen=True)
class PurposeState:
    purpose: Purpose
    granted: bool
    changed_at: dt.datetime | None


# Parsed files, checked against the file's mtime and size at every call: purposes are this node's
# configuration (the same instances.toml on every node), never data a member changes; consents are in the DB.
_cache: dict[str, tuple[tuple[int, int], tuple[Purpose, ...]]] = {}


def parse(data: dict[str, Any], source: str = "instances.toml") -> tuple[Purpose, ...]:
    """Validate the ``[[purposes]]`` tables of a parsed TOML document."""
    raw = data.get("purposes", [])
    if not isinstance(raw, list):
        raise ConsentError("%(source)s : « purposes » doit être une liste de tables.", source=source)
    found: list[Purpose] = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise ConsentError("%(source)s : la finalité nº %(n)s n’est pas une table.", source=source, n=index)
        key = str(entry.get("key", ""))
        if not KEY_RE.match(key):
            raise ConsentError("%(source)s : clé de finalité invalide (nº %(n)s).", source=source, n=index)
        texts = {name: str(entry.get(name, "")).strip() for name in ("title_fr", "title_en")}
        if not all(texts.values()):
            raise ConsentError(
                "%(source)s : la finalité %(key)s doit avoir title_fr et title_en.", source=source, key=key
            )
        if any(p.key == key for p in found):
            raise ConsentError("%(source)s : finalité %(key)s en double.", source=source, key=key)
        instances = entry.get("instances", [])
        if not isinstance(instances, list) or not all(isinstance(i, str) for i in instances):
            raise ConsentError("%(source)s : « instances » de %(key)s doit être une liste.", source=source, key=key)
        found.append(
            Purpose(
                key=key,
                title_fr=texts["title_fr"],
                title_en=texts["title_en"],
                description_fr=str(entry.get("description_fr", "")).strip(),
                description_en=str(entry.get("description_en", "")).strip(),
                instances=tuple(instances),
            )
        )
    return tuple(found)


def configured(settings: Settings) -> tuple[Purpose, ...]:
    """The purposes declared in the instances file (re-read when the file changes; none without a file)."""
    path = Path(settings.instances_file)
    try:
        stat = path.stat()
    except OSError:
        return ()
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(str(path))
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConsentError("%(source)s est illisible.", source=str(path)) from exc
    purposes = parse(data, str(path))
    _cache[str(path)] = (version, purposes)
    return purposes


def find(settings: Settings, key: str) -> Purpose:
    for purpose in configured(settings):
        if purpose.key == key:
            return purpose
    raise ConsentError("Cette finalité n’existe pas.", status=404)


def _latest(db: Session, member_id: int, key: str) -> ConsentEvent | None:
    return db.exec(
        select(ConsentEvent)
        .where(ConsentEvent.member_id == member_id, ConsentEvent.purpose == key)
        .order_by(col(ConsentEvent.at).desc(), col(ConsentEvent.id).desc())
        .limit(1)
    ).first()


def is_granted(db: Session, member_id: int, key: str) -> bool:
    """Whether the member has turned this purpose on (and not off since)."""
    event = _latest(db, member_id, key)
    return event is not None and event.action == "granted"


def states(db: Session, settings: Settings, member_id: int) -> list[PurposeState]:
    """Every configured purpose with the member's choice (off unless turned on)."""
    result = []
    for purpose in configured(settings):
        event = _latest(db, member_id, purpose.key)
        result.append(
            PurposeState(purpose, event is not None and event.action == "granted", event.at if event else None)
        )
    return result


def choose(db: Session, settings: Settings, member_id: int, key: str, granted: bool) -> bool:
    """Turn a purpose on or off; returns False (and writes nothing) when it already was."""
    purpose = find(settings, key)
    if is_granted(db, member_id, key) == granted:
        return False
    db.add(
        ConsentEvent(
            member_id=member_id,
            client_id="",
            purpose=purpose.key,
            action="granted" if granted else "withdrawn",
            policy_version=accounts_policy.current_version(db, settings),
            detail=purpose.title_fr,
        )
    )
    db.flush()
    return True
