"""The federation as CHATONS sees it: the data hosters supply (their organization's — type, contact,
legal and terms URLs, logo, founding date — on their page; each service's — registration policy,
install type, legal URL, user guide, licence of software Portail does not know — on the node's edit
form and the API's ``PATCH``), and the StatoolInfos files built from them.

Files: ``federation.properties`` links (``subs.<hoster>``) one organization file per active hoster
(``hosters/<slug>.properties``), which links one service file per active instance
(``services/<slug>.properties``). Each file is checked against the specification's field tables
(``statoolinfos.problems``) *as written*: a file with a missing or invalid mandatory value is not
published (404, and its parent does not link it), and the hoster's page says what is missing.
Membership dates (``organization.memberof.<federation_id>.*``) come from the federation's decisions;
``host.*`` carries where the data lives (``residency.py``). Demo instances are never exported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from portail.accounts import regions
from portail.accounts.members import audit
from portail.config import Settings
from portail.db import utcnow
from portail.federation import availability, hosters, residency, statoolinfos
from portail.federation.directory import SOFTWARE_INFO
from portail.federation.models import Hoster, Instance
from portail.federation.rules import Actor, FederationError, require_hoster, valid_slug
from portail.web import N_

PREFIX = "/federation/statoolinfos"
DESCRIPTION = "Fédération québécoise d’hébergeurs de logiciels libres d’En commun"
ORGANIZATION_TYPES: dict[str, str] = {
    "ASSOCIATION": N_("Association ou OBNL"),
    "INFORMAL": N_("Collectif informel"),
    "COOPERATIVE": N_("Coopérative"),
    "MICROCOMPANY": N_("Micro-entreprise"),
    "COMPANY": N_("Entreprise"),
    "INDIVIDUAL": N_("Particulier"),
    "OTHER": N_("Autre"),
}
REGISTRATIONS: dict[str, str] = {
    "None": N_("Sans inscription"),
    "Free": N_("Inscription libre et gratuite"),
    "Member": N_("Réservée aux membres"),
    "Client": N_("Liée à une relation commerciale (client)"),
}
INSTALL_TYPES: dict[str, str] = {
    "DISTRIBUTION": N_("Paquet de la distribution"),
    "PROVIDER": N_("Paquet ou image de l’éditeur"),
    "PACKAGE": N_("Paquet maison"),
    "TOOLING": N_("Outillage (Docker, YunoHost, Ansible…)"),
    "CLONE": N_("Copie du dépôt source"),
}
SERVICE_FIELDS = ("registration", "install_type", "legal_url", "guide_url", "software_name", "software_license")
# what a hoster reads when a key is missing or invalid (keys they cannot change are shown as they are)
LABELS: dict[str, str] = {
    "organization.description": N_("présentation de l’hébergeur"),
    "organization.type": N_("type d’organisation"),
    "organization.website": N_("site web"),
    "organization.contact.email": N_("courriel de contact"),
    "organization.logo": N_("logo"),
    "organization.legal.url": N_("mentions légales"),
    "organization.startdate": N_("date de fondation"),
    "service.description": N_("description du service"),
    "service.registration": N_("politique d’inscription"),
    "service.install.type": N_("type d’installation"),
    "service.legal.url": N_("mentions légales ou conditions"),
    "service.guide.user": N_("guide d’utilisation"),
    "software.name": N_("nom du logiciel"),
    "software.license.name": N_("licence du logiciel"),
    "host.provider": N_("fournisseur d’hébergement"),
    "host.provider.type": N_("type d’hébergement (matériel à vous ou loué)"),
    "host.server.type": N_("type de serveur"),
    "host.country.name": N_("lieu de stockage des données"),
    "host.country.code": N_("lieu de stockage des données"),
}


@dataclass(frozen=True)
class Built:
    text: str
    problems: list[str] = field(default_factory=list)

    @property
    def publishable(self) -> bool:
        return not self.problems


def _check(kind: str, text: str, settings: Settings) -> Built:
    return Built(text, statoolinfos.problems(kind, statoolinfos.parse(text), settings.federation_id))


def missing_keys(built: Built) -> list[str]:
    """The keys a problem names (``missing x``, ``bad URL in x``), for the hoster's page."""
    keys: list[str] = []
    for problem in built.problems:
        name = problem.split(" in ", 1)[1].split(":", 1)[0] if " in " in problem else problem.split()[-1]
        if name not in keys:
            keys.append(name)
    return keys


# ---------------------------------------------------------------- files


def federation_file(db: Session, settings: Settings) -> Built:
    base = f"{settings.issuer}{PREFIX}"
    subs: statoolinfos.Pairs = [
        (f"subs.{h.slug}", f"{base}/hosters/{h.slug}.properties")
        for h in db.exec(select(Hoster).where(Hoster.status == "active").order_by(col(Hoster.slug)).limit(1000))
        if organization_file(db, settings, h).publishable
    ]
    text = statoolinfos.render(
        [
            statoolinfos.file_section("federation", f"{base}/federation.properties"),
            (
                "Federation",
                [
                    ("federation.name", settings.federation_name),
                    ("federation.description", DESCRIPTION),
                    ("federation.website", f"{settings.issuer}/federation/directory"),
                    ("federation.contact.email", settings.federation_contact_email),
                    ("federation.legal.url", f"{settings.issuer}/federation/charter"),
                    ("federation.startdate", settings.federation_start_date),
                    ("federation.country.name", "Canada"),
                    ("federation.country.code", "CA"),
                ],
            ),
            ("Subs", subs),
        ]
    )
    return _check("federation", text, settings)


def _services(db: Session, hoster: Hoster) -> list[Instance]:
    rows = db.exec(
        select(Instance)
        .where(Instance.hoster_id == hoster.id, Instance.status == "active")
        .order_by(col(Instance.slug))
        .limit(1000)
    )
    return [i for i in rows if availability.state(i) != "demo"]


def _member_level(hoster: Hoster) -> str:
    return {"active": "ACTIVE", "suspended": "IDLE"}.get(hoster.status, "AWAY")


def organization_file(db: Session, settings: Settings, hoster: Hoster, *, with_subs: bool = True) -> Built:
    base = f"{settings.issuer}{PREFIX}"
    fed = settings.federation_id
    joined = hoster.decided_at or hoster.created_at
    subs: statoolinfos.Pairs = (
        [
            (f"subs.{i.slug}", f"{base}/services/{i.slug}.properties")
            for i in _services(db, hoster)
            if service_file(db, settings, i, hoster).publishable
        ]
        if with_subs
        else []
    )
    text = statoolinfos.render(
        [
            statoolinfos.file_section("organization", f"{base}/hosters/{hoster.slug}.properties"),
            (
                "Organization",
                [
                    ("organization.name", hoster.name),
                    ("organization.description", hoster.description.strip()),
                    ("organization.type", hoster.organization_type),
                    ("organization.status.level", _member_level(hoster)),
                    ("organization.website", hoster.website),
                    ("organization.logo", hoster.logo_url),
                    ("organization.contact.email", hoster.contact_email),
                    ("organization.legal.url", hoster.legal_url),
                    ("organization.startdate", statoolinfos.date(hoster.start_date)),
                    (f"organization.memberof.{fed}.startdate", statoolinfos.date(joined)),
                    (f"organization.memberof.{fed}.status.level", _member_level(hoster)),
                    ("organization.country.name", "Canada"),
                    ("organization.country.code", "CA"),
                    ("organization.geography", regions.name(hoster.region)),
                ],
            ),
            ("Subs", subs),
        ]
    )
    return _check("organization", text, settings)


def _country(place: str) -> tuple[str, str]:
    """(name, ISO 3166-1 code) of a residency place, for ``host.country.*``."""
    code = place.split("-", 1)[0] if place else ""
    return (residency.countries("fr_CA").get(code, ""), code)


def host_description(instance: Instance) -> str:
    """``host.description``: where the data and the backups are, in French words."""
    if not instance.data_location:
        return ""
    where = residency.place_name(instance.data_location)
    backups = residency.place_name(instance.backup_location) if instance.backup_location else where
    lead = "Données au Québec" if not residency.leaves_quebec(instance) else "Données hors Québec"
    return f"{lead} — stockage : {where}; sauvegardes : {backups}"


def _hoster_terms(hoster: Hoster | None) -> str:
    """A service without its own legal URL falls under its hoster's terms (or legal notice)."""
    return (hoster.terms_url or hoster.legal_url) if hoster else ""


def service_file(db: Session, settings: Settings, instance: Instance, hoster: Hoster | None = None) -> Built:
    if hoster is None and instance.hoster_id:
        hoster = db.get(Hoster, instance.hoster_id)
    known_name, website, known_licence, source = SOFTWARE_INFO.get(instance.software, SOFTWARE_INFO["other"])
    licence = known_licence or instance.software_license
    status = {"up": "OK", "degraded": "WARNING", "down": "ERROR"}.get(instance.health, "VOID")
    country, code = _country(instance.data_location)
    text = statoolinfos.render(
        [
            statoolinfos.file_section("service", f"{settings.issuer}{PREFIX}/services/{instance.slug}.properties"),
            (
                "Service",
                [
                    ("service.name", instance.name),
                    ("service.description", instance.description),
                    ("service.website", instance.base_url),
                    ("service.contact.email", instance.contact_email or (hoster.contact_email if hoster else "")),
                    ("service.legal.url", instance.legal_url or _hoster_terms(hoster)),
                    ("service.guide.user", instance.guide_url),
                    ("service.startdate", statoolinfos.date(instance.approved_at or instance.created_at)),
                    ("service.status.level", status),
                    ("service.registration", instance.registration),
                    ("service.registration.load", "OPEN"),
                    ("service.install.type", instance.install_type),
                ],
            ),
            (
                "Software",
                [
                    ("software.name", known_name or instance.software_name),
                    ("software.website", website),
                    ("software.license.name", licence),
                    ("software.license.url", f"https://spdx.org/licenses/{licence}.html" if licence else ""),
                    ("software.source.url", source),
                    ("software.version", instance.software_version),
                ],
            ),
            (
                "Host",
                [
                    ("host.name", hoster.name if hoster else ""),
                    ("host.description", host_description(instance)),
                    ("host.provider", instance.hosting_provider),
                    ("host.provider.type", instance.provider_type),
                    ("host.server.type", instance.server_type),
                    ("host.country.name", country),
                    ("host.country.code", code),
                ],
            ),
        ]
    )
    return _check("service", text, settings)


def hoster_properties(db: Session, settings: Settings, slug: str) -> Built | None:
    if not valid_slug(slug):
        return None
    hoster = db.exec(select(Hoster).where(Hoster.slug == slug, Hoster.status == "active")).first()
    return organization_file(db, settings, hoster) if hoster else None


def service_properties(db: Session, settings: Settings, slug: str) -> Built | None:
    if not valid_slug(slug):
        return None
    instance = db.exec(select(Instance).where(Instance.slug == slug, Instance.status == "active")).first()
    if instance is None or availability.state(instance) == "demo":
        return None
    return service_file(db, settings, instance)


def publication(db: Session, settings: Settings, hoster: Hoster) -> dict[str, list[str]]:
    """What keeps the hoster's files from being published: ``{"": organization keys, slug: service keys}``
    (only entries with something missing)."""
    found: dict[str, list[str]] = {}
    organization = organization_file(db, settings, hoster, with_subs=False)
    if not organization.publishable:
        found[""] = missing_keys(organization)
    for instance in _services(db, hoster):
        built = service_file(db, settings, instance, hoster)
        if not built.publishable:
            found[instance.slug] = missing_keys(built)
    return found


def publication_of(db: Session, settings: Settings, slug: str) -> dict[str, list[str]]:
    return publication(db, settings, hosters.get(db, slug))


# ---------------------------------------------------------------- editing


def _url(value: str, label: str) -> str:
    value = value.strip()
    if value and (len(value) > 500 or not statoolinfos.valid_url(value)):
        raise FederationError("%(field)s : une adresse web complète est attendue (https://…).", field=label)
    return value


ORGANIZATION_FIELDS = (
    "organization_type",
    "description",
    "website",
    "contact_email",
    "legal_url",
    "terms_url",
    "logo_url",
    "start_date",
)


def edit_organization(db: Session, actor: Actor, slug: str, values: dict[str, str]) -> tuple[Hoster, list[str]]:
    """A hoster's administrators (or the federation) edit its CHATONS organization data."""
    hoster = hosters.get(db, slug)
    require_hoster(db, actor, hoster.id, admin=True)
    changed: list[str] = []
    for name in ORGANIZATION_FIELDS:
        if name not in values:
            continue
        raw = str(values[name]).strip() if name == "description" else " ".join(str(values[name]).split())
        value: object = raw
        if name == "organization_type" and raw and raw not in ORGANIZATION_TYPES:
            raise FederationError("Type d’organisation inconnu : %(value)s.", value=raw[:20])
        if name == "contact_email" and raw and not statoolinfos.valid_email(raw):
            raise FederationError("L’adresse courriel de contact est invalide.")
        if name == "description" and len(raw) > 2000:
            raise FederationError("La description compte au plus %(max)s caractères.", max=2000)
        if name in ("website", "legal_url", "terms_url", "logo_url"):
            value = _url(raw, name) or (None if name == "website" else "")
        if name == "start_date":
            value = _start_date(raw)
        if getattr(hoster, name) != value:
            setattr(hoster, name, value)
            changed.append(name)
    if changed:
        db.add(hoster)
        audit(
            db,
            "hoster.organization_edited",
            actor_id=actor.member_id,
            subject_type="hoster",
            subject_id=slug,
            reason=", ".join(changed),
            ip_address=actor.ip_address,
        )
    return hoster, changed


def _start_date(raw: str) -> dt.date | None:
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise FederationError("La date de fondation s’écrit AAAA-MM-JJ (ex. 2014-05-01).") from None
    if value > utcnow().date() or value.year < 1900:
        raise FederationError("La date de fondation s’écrit AAAA-MM-JJ (ex. 2014-05-01).")
    return value


def apply_service(instance: Instance, values: dict[str, str]) -> list[str]:
    """Validate and set the service data given in ``values`` (node form, API PATCH); returns what changed."""
    changed: list[str] = []
    for name in SERVICE_FIELDS:
        if name not in values:
            continue
        value = " ".join(str(values[name]).split())
        if name == "registration":
            items = [v for v in value.replace(",", ";").split(";") if v.strip()]
            items = [v.strip() for v in items]
            if any(v not in REGISTRATIONS for v in items):
                raise FederationError("Politique d’inscription inconnue (None, Free, Member ou Client).")
            value = ";".join(dict.fromkeys(items))
        elif name == "install_type" and value and value not in INSTALL_TYPES:
            raise FederationError("Type d’installation inconnu : %(value)s.", value=value[:20])
        elif name in ("legal_url", "guide_url"):
            value = _url(value, name)
        elif len(value) > 100:
            raise FederationError("%(field)s compte au plus 100 caractères.", field=name)
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed
