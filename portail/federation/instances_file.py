"""``instances.toml``: the central instances (and optionally hosters, organizations and territories)
that the operator declares, synchronized into the registry by ``portail instances sync [FILE]`` and at
``portail serve`` start (``sync_on_start``).

The sync is idempotent and says what it changed: ``+`` created, ``~`` updated (with the fields), ``-``
retired, ``!`` needs attention. It never deletes silently: an instance that came from the file and is
no longer in it is only reported, and retired (its client disabled, its tokens revoked) with
``--prune``. Hosters and organizations are never removed by the sync. Each instance gets its OpenID
Connect client (client id = ``client_id`` or the slug); a new client's secret is printed once, or
taken from the environment variable named by ``client_secret_env`` (and updated when that variable
changes). The file is the configuration reference: every key is commented in the repository's copy.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from portail.accounts.members import audit
from portail.accounts.models import Organization
from portail.accounts.regions import REGIONS
from portail.config import ConfigError, Settings
from portail.db import Database, utcnow
from portail.federation import provisioning
from portail.federation.lifecycle import MAX_DECLARED, MAX_DECLARED_LENGTH, MAX_DESCRIPTION
from portail.federation.models import SCOPES, SOFTWARE, Hoster, Instance
from portail.federation.origins import origin_key
from portail.federation.rules import FederationError, valid_slug
from portail.oidc.clients import SUBJECT_TYPES
from portail.web import translate

HOSTER_KEYS = {"slug", "name", "website", "contact_email", "charter_version", "description", "region"}
ORGANIZATION_KEYS = {"slug", "name", "kind", "region", "locality", "description", "description_en", "website"}
INSTANCE_KEYS = {
    "slug", "name", "software", "base_url", "hoster", "scope", "trusted", "demo", "redirect_uris",
    "post_logout_redirect_uris", "backchannel_logout_uri", "subject_type", "client_secret_env", "client_id",
    "description", "description_en", "purposes", "data_categories", "purposes_en", "data_categories_en",
    "feed_url", "login_url",
    "account_events_uri", "provider_identifier", "organization", "territory", "push_notifications",
}  # fmt: skip
LIST_KEYS = {
    "redirect_uris",
    "post_logout_redirect_uris",
    "purposes",
    "data_categories",
    "purposes_en",
    "data_categories_en",
}
BOOL_KEYS = {"trusted", "demo", "push_notifications"}


class FileError(ConfigError):
    """The instances file is unreadable or invalid; the message names the entry, French then English."""


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    secrets: list[tuple[str, str, str]] = field(default_factory=list)  # slug, client_id, secret
    created: int = 0
    updated: int = 0
    retired: int = 0
    kept: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.retired)

    def summary(self, path: str) -> str:
        if not self.changed and not self.kept:
            return f"{path} : aucun changement / no changes"
        return (
            f"{path} : {self.created} créé(s), {self.updated} modifié(s), {self.retired} retiré(s), "
            f"{self.kept} à retirer / {self.created} created, {self.updated} updated, {self.retired} retired, "
            f"{self.kept} to prune"
        )


def load(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Read and check the file; raises ``FileError`` naming the faulty entry."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileError(f"Fichier introuvable / file not found: {file}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileError(f"{file} illisible / unreadable: {exc}") from exc
    unknown = set(data) - {"hosters", "organizations", "instances", "purposes"}  # purposes: portail.consent
    if unknown:
        raise FileError(f"{file} : section inconnue / unknown section: {', '.join(sorted(unknown))}")
    parsed: dict[str, list[dict[str, Any]]] = {}
    for section, keys in (("hosters", HOSTER_KEYS), ("organizations", ORGANIZATION_KEYS), ("instances", INSTANCE_KEYS)):
        entries = data.get(section, [])
        if not isinstance(entries, list):
            raise FileError(f"{file} : [[{section}]] attendu / expected an array of tables")
        seen: set[str] = set()
        for index, entry in enumerate(entries, 1):
            where = f"{file} [[{section}]] n°{index}"
            if not isinstance(entry, dict):
                raise FileError(f"{where} : table attendue / table expected")
            extra = set(entry) - keys
            if extra:
                raise FileError(f"{where} : clé inconnue / unknown key: {', '.join(sorted(extra))}")
            slug = str(entry.get("slug", ""))
            mistyped = _mistyped(entry)
            if mistyped:
                raise FileError(f"{where} ({slug}) : {mistyped}")
            if not valid_slug(slug) or slug in seen:
                raise FileError(f"{where} : slug invalide ou en double / invalid or duplicate slug {slug!r}")
            if not str(entry.get("name", "")).strip():
                raise FileError(f"{where} ({slug}) : name obligatoire / name is required")
            seen.add(slug)
        parsed[section] = entries
    return parsed


def _mistyped(entry: dict[str, Any]) -> str:
    """The first key whose value has the wrong TOML type, as a bilingual message ("" when all fit)."""
    for key, value in entry.items():
        if key in LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                return f"{key} : liste de chaînes attendue / expected a list of strings"
        elif key in BOOL_KEYS:
            if not isinstance(value, bool):
                return f"{key} : true ou false attendu / expected true or false"
        elif not isinstance(value, str):
            return f"{key} : chaîne attendue / expected a string"
    return ""


def _fail(slug: str, message: str) -> FileError:
    return FileError(f"instances.toml [{slug}] : {message}")


DECLARED = ("purposes", "data_categories", "purposes_en", "data_categories_en")


def _declared(slug: str, entry: dict[str, Any], key: str) -> list[str]:
    """A list of declared purposes or data categories (Law 25), bounded as on the node's page."""
    value: list[str] = entry.get(key, [])  # a list of strings: the file's schema is checked first
    kept = [" ".join(item.split()) for item in value if item.strip()]
    if len(kept) > MAX_DECLARED or any(len(item) > MAX_DECLARED_LENGTH for item in kept):
        raise _fail(
            slug,
            f"{key} : {MAX_DECLARED} éléments de {MAX_DECLARED_LENGTH} caractères au plus / "
            f"at most {MAX_DECLARED} items of {MAX_DECLARED_LENGTH} characters",
        )
    return kept


def _flag(slug: str, entry: dict[str, Any], key: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise _fail(slug, f"{key} = true | false")
    return value


def _bilingual(exc: FederationError) -> str:
    french = exc.message % exc.params if exc.params else exc.message
    english = translate("en", exc.message, **exc.params)
    return french if english == french else f"{french} / {english}"


def _sync_hoster(db: Session, entry: dict[str, Any], report: Report) -> None:
    wanted = {
        "name": str(entry["name"]),
        "website": entry.get("website") or None,
        "contact_email": str(entry.get("contact_email", "")),
        "charter_version": str(entry.get("charter_version", "")),
        "description": str(entry.get("description", "")),
        "region": entry.get("region") or None,
    }
    if wanted["region"] and wanted["region"] not in REGIONS:
        raise _fail(entry["slug"], "region 01–17")
    _upsert(
        db,
        Hoster,
        "hoster",
        entry["slug"],
        wanted,
        report,
        {"status": "active", "charter_accepted_at": utcnow(), "decided_at": utcnow()},
    )


def _sync_organization(db: Session, entry: dict[str, Any], report: Report) -> None:
    kind = str(entry.get("kind", "organization"))
    if kind not in ("organization", "territory"):
        raise _fail(entry["slug"], "kind = organization | territory")
    wanted = {
        "name": str(entry["name"]),
        "kind": kind,
        "region": entry.get("region") or None,
        "locality": entry.get("locality") or None,
        "description": str(entry.get("description", "")).strip(),
        "description_en": str(entry.get("description_en", "")).strip(),  # "" shows the French one
        "website": entry.get("website") or None,
    }
    if wanted["region"] and wanted["region"] not in REGIONS:
        raise _fail(entry["slug"], "region 01–17")
    _upsert(db, Organization, "organization", entry["slug"], wanted, report, {})


def _upsert(
    db: Session, model: Any, label: str, slug: str, wanted: dict[str, Any], report: Report, on_create: dict[str, Any]
) -> Any:
    row = db.exec(select(model).where(model.slug == slug)).first()
    if row is None:
        row = model(slug=slug, **wanted, **on_create)
        db.add(row)
        db.flush()
        report.created += 1
        report.lines.append(f"+ {label} {slug} : créé / created")
        return row
    changed = [k for k, v in wanted.items() if getattr(row, k) != v]
    if changed:
        for key in changed:
            setattr(row, key, wanted[key])
        db.add(row)
        report.updated += 1
        report.lines.append(f"~ {label} {slug} : modifié / updated ({', '.join(changed)})")
    return row


def _instance_values(db: Session, settings: Settings, entry: dict[str, Any]) -> dict[str, Any]:
    slug = entry["slug"]
    software, scope = str(entry.get("software", "")), str(entry.get("scope", "central"))
    if software not in SOFTWARE:
        raise _fail(slug, f"software = {' | '.join(SOFTWARE)}")
    if scope not in SCOPES:
        raise _fail(slug, f"scope = {' | '.join(SCOPES)}")
    base = str(entry.get("base_url", "")).rstrip("/")
    try:
        key = origin_key(base)
    except ValueError:
        key = ""
    if not key or not base.startswith(("https://", "http://")) or "?" in base or "#" in base:
        raise _fail(slug, "base_url : URL http(s) absolue / absolute http(s) URL")
    hoster_id = None
    if entry.get("hoster"):
        hoster = db.exec(select(Hoster).where(Hoster.slug == entry["hoster"])).first()
        if hoster is None:
            raise _fail(slug, f"hébergeur inconnu / unknown hoster {entry['hoster']!r}")
        hoster_id = hoster.id
    organization_id = None
    served = entry.get("territory") or entry.get("organization")
    if served:
        org = db.exec(select(Organization).where(Organization.slug == served)).first()
        if org is None:
            raise _fail(slug, f"organisation ou territoire inconnu / unknown organization {served!r}")
        organization_id = org.id
    elif scope != "central":
        raise _fail(slug, "organization ou territory requis / required for this scope")
    subject_type = str(entry.get("subject_type") or settings.default_subject_type)
    if subject_type not in SUBJECT_TYPES:
        raise _fail(slug, "subject_type = public | pairwise")
    env_name = str(entry.get("client_secret_env") or "")
    if env_name.upper().startswith("PORTAIL_"):
        raise _fail(slug, "client_secret_env ne peut commencer par PORTAIL_ (réglages) / must not start with PORTAIL_")
    if not isinstance(entry.get("push_notifications", False), bool):
        raise _fail(slug, "push_notifications = true | false")
    given = entry.get("redirect_uris")
    try:
        if software in provisioning.DERIVED_SOFTWARE and not given:
            uris = provisioning.derive(
                software, base, provider_identifier=str(entry.get("provider_identifier", "encommun"))
            )
        else:
            uris = provisioning.Uris(list(given or []), [], None)
        pid = provisioning.check_provider_identifier(str(entry.get("provider_identifier", "encommun")))
        pushes = provisioning.push_setting(entry.get("push_notifications"), software)
    except FederationError as exc:
        raise _fail(slug, str(exc)) from exc
    extra = {"subject_type": subject_type, **({"client_secret_env": env_name} if env_name else {})}
    # Absent, a description stays as it is (it may have been written on the node's page); "" clears it.
    descriptions: dict[str, str] = {
        name: str(entry[name]).strip() for name in ("description", "description_en") if name in entry
    }
    for name, text in descriptions.items():
        if len(text) > MAX_DESCRIPTION:
            raise _fail(slug, f"{name} : {MAX_DESCRIPTION} caractères au plus / at most {MAX_DESCRIPTION} characters")
    return {
        "name": str(entry["name"]),
        "software": software,
        "base_url": base,
        "origin_key": key,
        "hoster_id": hoster_id,
        "scope": scope,
        "organization_id": organization_id,
        "trusted": bool(entry.get("trusted", False)),
        "demo": _flag(slug, entry, "demo"),
        "redirect_uris": uris.redirect_uris,
        "post_logout_redirect_uris": list(entry.get("post_logout_redirect_uris", uris.post_logout_redirect_uris)),
        "backchannel_logout_uri": entry.get("backchannel_logout_uri", uris.backchannel_logout_uri),
        "provider_identifier": pid,
        "login_url": entry.get("login_url"),
        "feed_url": entry.get("feed_url"),
        "account_events_uri": entry.get("account_events_uri"),
        **descriptions,  # description_en "" shows the French one to English-speaking members
        **{name: _declared(slug, entry, name) for name in DECLARED},
        "extra": extra,
        "client_id": str(entry.get("client_id") or slug),
        "push_notifications": pushes,
    }


def _client_state(db: Session, instance: Instance) -> tuple[Any, ...] | None:
    client = provisioning.client_of(db, instance)
    if client is None:
        return None
    return (
        client.name,
        client.redirect_uris,
        client.post_logout_redirect_uris,
        client.backchannel_logout_uri,
        client.subject_type,
        client.trusted,
        client.grant_types,
        client.scope,
        client.disabled_at is None,
    )


def _sync_instance(
    db: Session, settings: Settings, entry: dict[str, Any], report: Report, environ: Mapping[str, str]
) -> None:
    slug = entry["slug"]
    wanted = _instance_values(db, settings, entry)
    instance = db.exec(select(Instance).where(Instance.slug == slug)).first()
    clash = db.exec(
        select(Instance).where(
            Instance.origin_key == wanted["origin_key"], Instance.slug != slug, Instance.status != "retired"
        )
    ).first()
    if clash is not None:
        raise _fail(slug, f"base_url déjà utilisée par / already used by {clash.slug}")
    changed: list[str] = []
    if instance is None:
        instance = Instance(slug=slug, status="active", source="file", approved_at=utcnow(), **wanted)
        db.add(instance)
        db.flush()
        report.created += 1
        report.lines.append(f"+ instance {slug} : créée / created")
        audit(db, "instance.file_created", subject_type="instance", subject_id=slug)
    else:
        if instance.source != "file":
            raise _fail(slug, "ce slug appartient à une instance du registre / slug used by a registry instance")
        changed = [k for k, v in wanted.items() if getattr(instance, k) != v]
        for key in changed:
            setattr(instance, key, wanted[key])
        if instance.status == "retired" and instance.status_reason.startswith("instances.toml"):
            instance.status, instance.status_reason = "active", ""
            provisioning.enable(db, instance)
            changed.append("status")
    before = _client_state(db, instance)
    secret = provisioning.provision(db, settings, instance, administrator=True)
    env_name = str(wanted["extra"].get("client_secret_env", ""))
    env_value = environ.get(env_name, "") if env_name else ""
    if env_value:
        if provisioning.set_secret(db, instance, env_value) and secret is None:
            changed.append("client_secret")
        secret = None
    elif secret is not None:
        report.secrets.append((slug, instance.client_id or slug, secret))
        if env_name:
            report.lines.append(f"! instance {slug} : {env_name} absente, secret généré / not set, secret generated")
    if before is not None and before != _client_state(db, instance):
        changed.append("client")
    if changed and before is not None:
        instance.updated_at = utcnow()
        db.add(instance)
        report.updated += 1
        report.lines.append(f"~ instance {slug} : modifiée / updated ({', '.join(dict.fromkeys(changed))})")
        audit(db, "instance.file_updated", subject_type="instance", subject_id=slug, reason=", ".join(changed))


def _upgrade_registry_clients(db: Session, report: Report) -> None:
    """Clients provisioned for hosters' nodes before their grants changed get them now."""
    for instance in db.exec(select(Instance).where(Instance.source != "file", Instance.status == "active")):
        if provisioning.upgrade_access(db, instance):
            report.updated += 1
            report.lines.append(f"~ instance {instance.slug} : droits du client mis à jour / client grants updated")
            audit(db, "instance.client_upgraded", subject_type="instance", subject_id=instance.slug)


def sync(
    db: Session,
    settings: Settings,
    data: dict[str, list[dict[str, Any]]],
    *,
    prune: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Bring the registry in line with the file (one transaction); see the module docstring."""
    env = os.environ if environ is None else environ
    report = Report()
    for entry in data.get("hosters", []):
        _sync_hoster(db, entry, report)
    for entry in data.get("organizations", []):
        _sync_organization(db, entry, report)
    declared = set()
    for entry in data.get("instances", []):
        try:
            _sync_instance(db, settings, entry, report, env)
        except FederationError as exc:  # e.g. its client refused (http:// redirect URI, bad metadata)
            raise _fail(entry["slug"], _bilingual(exc)) from exc
        declared.add(entry["slug"])
    _upgrade_registry_clients(db, report)
    stale = db.exec(select(Instance).where(Instance.source == "file", Instance.status != "retired")).all()
    for instance in stale:
        if instance.slug in declared:
            continue
        if not prune:
            report.kept += 1
            report.lines.append(
                f"! instance {instance.slug} : absente du fichier, conservée (--prune pour la retirer) / "
                "missing from the file, kept (use --prune to retire it)"
            )
            continue
        instance.status, instance.status_reason = "retired", "instances.toml: removed from the file (--prune)"
        provisioning.disable(db, settings, instance, "retire", "instances.toml: removed from the file (--prune)")
        db.add(instance)
        report.retired += 1
        report.lines.append(f"- instance {instance.slug} : retirée, client désactivé / retired, client disabled")
        audit(db, "instance.retired", subject_type="instance", subject_id=instance.slug, reason="--prune")
    return report


def print_report(report: Report, path: str) -> None:
    for line in report.lines:
        print(line, flush=True)
    for slug, client_id, secret in report.secrets:
        print(f"  client {client_id} ({slug}) — secret : {secret}", flush=True)
    if report.secrets:
        print(
            "  Notez ces secrets : ils ne seront plus affichés. / Write these secrets down: they will not be "
            "shown again.",
            flush=True,
        )
    print(report.summary(path), flush=True)


def sync_on_start(settings: Settings, db: Database) -> Report:
    """Called by ``portail serve`` before the workers start: sync without pruning, print what changed."""
    data = load(settings.instances_file)
    report = db.call(sync, settings, data)
    print_report(report, settings.instances_file)
    return report
