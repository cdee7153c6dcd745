"""Where a node's data lives (Québec's Law 25, data sovereignty): the place its data and its backups
are stored, who runs the machines and whether the hoster owns or rents them; said in plain words per
tool (directory, consent page, "Mes données"), and the privacy impact assessment (PIA, *évaluation des
facteurs relatifs à la vie privée*, EFVP) the federation records before a node whose data leaves
Québec can be approved.

Law 25 (Act respecting the protection of personal information in the private sector, s. 17): before
communicating personal information outside Québec, an assessment of the privacy factors must be
made. A place is an ISO 3166-2 code for a Canadian province or territory (``CA-QC``, ``CA-ON``) or an
ISO 3166-1 country code (``FR``; ``CA`` alone: somewhere in Canada). Data leave Québec when the data
*or* the backups are stored elsewhere than ``CA-QC``. A node that has not declared is shown as such;
it can be approved (the federation sees that nothing was declared) — what blocks is a declared place
outside Québec without a recorded PIA.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from babel import Locale
from sqlmodel import Session, col, select

from portail.accounts.members import audit
from portail.config import Settings
from portail.db import utcnow
from portail.federation import notice_mail, statoolinfos
from portail.federation.models import Hoster, Instance
from portail.federation.rules import Actor, FederationError, by_slug, require_federation_admin
from portail.oidc.models import OAuthClient
from portail.web import N_, translate

QUEBEC = "CA-QC"
PROVINCES: dict[str, str] = {
    "CA-QC": N_("Québec"),
    "CA-ON": N_("Ontario"),
    "CA-NB": N_("Nouveau-Brunswick"),
    "CA-NS": N_("Nouvelle-Écosse"),
    "CA-PE": N_("Île-du-Prince-Édouard"),
    "CA-NL": N_("Terre-Neuve-et-Labrador"),
    "CA-MB": N_("Manitoba"),
    "CA-SK": N_("Saskatchewan"),
    "CA-AB": N_("Alberta"),
    "CA-BC": N_("Colombie-Britannique"),
    "CA-YT": N_("Yukon"),
    "CA-NT": N_("Territoires du Nord-Ouest"),
    "CA-NU": N_("Nunavut"),
}
PROVIDER_TYPES: dict[str, str] = {
    "HOME": N_("matériel de l’hébergeur, dans ses propres locaux"),
    "HOSTEDBAY": N_("matériel de l’hébergeur, installé dans un centre de données"),
    "HOSTEDSERVER": N_("serveur loué à un fournisseur"),
    "OUTSOURCED": N_("infrastructure entièrement confiée à un fournisseur (nuage)"),
}
SERVER_TYPES: dict[str, str] = {
    "NANO": N_("nano-ordinateur"),
    "PHYSICAL": N_("machine physique"),
    "VIRTUAL": N_("machine virtuelle"),
    "SHARED": N_("hébergement mutualisé"),
    "CLOUD": N_("infrastructure multi-serveurs (nuage)"),
}
FIELDS = ("data_location", "backup_location", "hosting_provider", "provider_type", "server_type")
assert tuple(PROVIDER_TYPES) == statoolinfos.PROVIDER_TYPES and tuple(SERVER_TYPES) == statoolinfos.SERVER_TYPES


@cache
def countries(locale: str = "fr_CA") -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → country name in ``locale`` (Babel's CLDR data)."""
    names = Locale.parse(locale).territories
    pairs = sorted(names.items(), key=lambda kv: kv[1])
    return {code: name for code, name in pairs if len(code) == 2 and code.isalpha()}


def valid_place(code: str) -> bool:
    return code in PROVINCES or code in countries()


def place_name(code: str, locale: str = "fr-CA") -> str:
    """``Ontario (Canada)`` / ``France``, in the page's language (provinces through the catalogue)."""
    babel_locale = "en" if locale == "en" else "fr_CA"
    canada = countries(babel_locale).get("CA", "Canada")
    if code in PROVINCES:
        return f"{translate(locale, PROVINCES[code])} ({canada})"
    return countries(babel_locale).get(code, code)


def leaves_quebec(instance: Instance) -> bool:
    """Declared data or backups stored elsewhere than in Québec."""
    places = [p for p in (instance.data_location, instance.backup_location) if p]
    return any(p != QUEBEC for p in places)


@dataclass(frozen=True)
class Residency:
    """What a member is told about one tool."""

    declared: bool
    in_quebec: bool  # data and backups in Québec
    data_location: str
    backup_location: str
    hosting_provider: str
    provider_type: str
    pia_done: bool

    @property
    def owned(self) -> bool:
        return self.provider_type in ("HOME", "HOSTEDBAY")


def of(instance: Instance) -> Residency:
    return Residency(
        declared=bool(instance.data_location),
        in_quebec=bool(instance.data_location) and not leaves_quebec(instance),
        data_location=instance.data_location,
        backup_location=instance.backup_location,
        hosting_provider=instance.hosting_provider,
        provider_type=instance.provider_type,
        pia_done=instance.pia_recorded_at is not None,
    )


def for_clients(db: Session, client_ids: list[str]) -> dict[str, Residency]:
    """client_id → residency, for the tools that are federation nodes (one query)."""
    if not client_ids:
        return {}
    rows = db.exec(select(Instance).where(col(Instance.client_id).in_(client_ids[:500])))
    return {i.client_id: of(i) for i in rows if i.client_id}


# ---------------------------------------------------------------- editing (node form, API PATCH)


def apply(instance: Instance, values: dict[str, str]) -> list[str]:
    """Validate and set the residency fields given in ``values``; returns those that changed."""
    changed: list[str] = []
    for name in FIELDS:
        if name not in values:
            continue
        value = " ".join(str(values[name]).split())
        if name in ("data_location", "backup_location"):
            value = value.upper()
            if value and not valid_place(value):
                raise FederationError(
                    "Lieu inconnu : %(place)s (un code de province comme CA-QC ou un code de pays comme FR).",
                    place=value[:20],
                )
        elif name == "provider_type" and value and value not in PROVIDER_TYPES:
            raise FederationError("Type d’hébergement inconnu : %(value)s.", value=value[:20])
        elif name == "server_type" and value and value not in SERVER_TYPES:
            raise FederationError("Type de serveur inconnu : %(value)s.", value=value[:20])
        elif name == "hosting_provider" and len(value) > 200:
            raise FederationError("Le nom du fournisseur compte au plus 200 caractères.")
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    if changed and instance.data_location and not instance.backup_location:
        raise FederationError("Indiquez aussi où sont gardées les sauvegardes.")
    return changed


def warn_federation(db: Session, settings: Settings, instance: Instance) -> None:
    """An active node now declares data outside Québec without a PIA: the federation must look."""
    if instance.status == "active" and leaves_quebec(instance) and instance.pia_recorded_at is None:
        notice_mail.send(
            settings,
            notice_mail.admin_recipients(db),
            N_("Données hors Québec : %(instance)s"),
            N_(
                "Le nœud %(instance)s déclare maintenant stocker des données hors du Québec. La Loi 25 exige "
                "une évaluation des facteurs relatifs à la vie privée (EFVP) : enregistrez-la sur sa page."
            ),
            link=f"{settings.issuer}/federation/instances/{instance.slug}",
            instance=instance.name,
        )


# ---------------------------------------------------------------- the PIA and approval


def require_pia(instance: Instance) -> None:
    """Refuse (409 ``pia_required``) to approve a node whose data leave Québec without a recorded PIA."""
    if leaves_quebec(instance) and instance.pia_recorded_at is None:
        raise FederationError(
            "Les données de ce nœud sortent du Québec : la Loi 25 exige d’abord une évaluation des facteurs "
            "relatifs à la vie privée (EFVP). Enregistrez-la, puis approuvez.",
            status=409,
            code="pia_required",
        )


def record_pia(db: Session, settings: Settings, actor: Actor, slug: str, note: str = "") -> Instance:
    """The federation records that the node's privacy impact assessment was done (idempotent)."""
    require_federation_admin(actor)
    instance = by_slug(db, Instance, slug)
    note = " ".join(note.split())
    if len(note) > 500:
        raise FederationError("La note compte au plus 500 caractères.")
    if instance.pia_recorded_at is not None:
        return instance
    instance.pia_recorded_at, instance.pia_recorded_by, instance.pia_note = utcnow(), actor.member_id, note
    instance.updated_at = utcnow()
    db.add(instance)
    audit(
        db,
        "instance.pia_recorded",
        actor_id=actor.member_id,
        subject_type="instance",
        subject_id=slug,
        reason=note or f"{instance.data_location}/{instance.backup_location}",
        ip_address=actor.ip_address,
    )
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if hoster is not None:
        notice_mail.send(
            settings,
            notice_mail.hoster_recipients(db, settings, hoster),
            N_("EFVP enregistrée : %(instance)s"),
            N_("La fédération a enregistré l’évaluation des facteurs relatifs à la vie privée du nœud %(instance)s."),
            link=f"{settings.issuer}/federation/instances/{slug}",
            instance=instance.name,
        )
    return instance


# ---------------------------------------------------------------- the consent page


def consent_notes(db: Session, client: OAuthClient, locale: str) -> list[str]:
    """What the consent page says, in ``locale``, about where this tool keeps the member's data."""
    instance = db.exec(select(Instance).where(Instance.client_id == client.client_id)).first()
    if instance is None:
        return []
    place = of(instance)
    if not place.declared:
        return [translate(locale, "Le lieu où cet outil stocke vos données n’a pas été déclaré.")]
    if place.in_quebec:
        notes = [translate(locale, "Vos données restent au Québec.")]
    else:
        notes = [
            translate(
                locale,
                "Attention : vos données sortent du Québec. Elles sont stockées : %(data)s; sauvegardes : %(backup)s.",
                data=place_name(place.data_location, locale),
                backup=place_name(place.backup_location, locale),
            )
        ]
        if place.pia_done:
            notes.append(
                translate(
                    locale,
                    "La fédération a fait l’évaluation des facteurs relatifs à la vie privée exigée par la Loi 25.",
                )
            )
    if place.hosting_provider:
        notes.append(translate(locale, "Hébergé chez %(provider)s.", provider=place.hosting_provider))
    return notes
