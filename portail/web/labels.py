"""Plain-language labels for technical text that reaches a page: what a member or a hoster reads instead
of a raw error (``ConnectError: …``, ``dns: …``, ``status.php answered 502``).

The raw text stays in the database and is shown only to administrators, under "Détails techniques";
everyone reads the summary, in their language (French source messages, translated by the page).
"""

from __future__ import annotations

import re

from portail.web import N_

# The prober's errors (portail/federation/probes.py) start with the outbound guard's code
# (portail/outbound.py ``Refused``: "dns: …") or are short English phrases; the first match wins.
DNS = N_("Le nom de domaine de l’instance ne répond pas (DNS).")
SLOW, TOO_LONG = N_("L’instance répond, mais lentement."), N_("L’instance a mis trop de temps à répondre.")
CONNECTION = N_("L’instance ne répond pas : la connexion a échoué.")
CERTIFICATE = N_("Le certificat de sécurité (HTTPS) de l’instance est refusé.")
ADDRESS = N_("L’adresse de l’instance n’est pas acceptée par Portail.")
ODD = N_("L’instance a répondu de façon inattendue.")
MAINTENANCE = N_("L’outil est en maintenance ou pas encore installé.")
UPGRADE = N_("L’outil attend une mise à jour de sa base de données.")
HTTP_ERROR = N_("L’instance a répondu par une erreur.")
WRONG_SOFTWARE = N_("L’instance a répondu, mais pas comme cet outil devrait le faire.")
_PROBE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^dns\b|name or service not known|nodename nor servname", re.I), DNS),
    (re.compile(r"^timeout|timed? ?out", re.I), TOO_LONG),
    (re.compile(r"^slow\b", re.I), SLOW),
    (re.compile(r"^(unreachable|blocked)\b|connecterror|connection (refused|failed)", re.I), CONNECTION),
    (re.compile(r"^(tls|ssl)\b|certificate", re.I), CERTIFICATE),
    (re.compile(r"^(scheme|invalid|credentials|fragment|private|address)\b", re.I), ADDRESS),
    (re.compile(r"^(redirects|too-large)\b", re.I), ODD),
    (re.compile(r"maintenance|not installed", re.I), MAINTENANCE),
    (re.compile(r"database upgrade", re.I), UPGRADE),
    (re.compile(r"answered [45]\d\d", re.I), HTTP_ERROR),
    (re.compile(r"unreadable|no versions|not json", re.I), WRONG_SOFTWARE),
)
PROBE_OTHER = N_("L’instance n’a pas pu être vérifiée.")


def probe_problem(error: str) -> str:
    """The summary of a probe's raw error (French source message); ``""`` when there is no error."""
    if not error.strip():
        return ""
    for pattern, summary in _PROBE:
        if pattern.search(error):
            return summary
    return PROBE_OTHER


# The federation's decision log (/federation/admin, ``AuditEvent.action``): what happened, in words.
# An action missing here is shown as its code, which stays readable ("instance.edited").
_AUDIT: dict[str, str] = {
    "hoster.applied": N_("Candidature d’hébergeur reçue"),
    "hoster.reapplied": N_("Nouvelle candidature d’hébergeur"),
    "hoster.approved": N_("Hébergeur approuvé"),
    "hoster.refused": N_("Hébergeur refusé"),
    "hoster.suspended": N_("Hébergeur suspendu"),
    "hoster.active": N_("Hébergeur rétabli"),
    "hoster.excluded": N_("Hébergeur exclu"),
    "hoster.charter_accepted": N_("Charte acceptée"),
    "hoster.organization_edited": N_("Fiche de l’hébergeur modifiée"),
    "hoster.person_set": N_("Rôle d’une personne chez l’hébergeur"),
    "hoster.person_removed": N_("Personne retirée de l’hébergeur"),
    "hoster.api_client_issued": N_("Accès à l’API remis à l’hébergeur"),
    "instance.registered": N_("Instance inscrite"),
    "instance.verified": N_("Contrôle du domaine prouvé"),
    "instance.approved": N_("Instance approuvée"),
    "instance.refused": N_("Instance refusée"),
    "instance.registration_refused": N_("Inscription refusée"),
    "instance.expired": N_("Inscription expirée, sans preuve de contrôle"),
    "instance.edited": N_("Instance modifiée"),
    "instance.suspended": N_("Instance suspendue"),
    "instance.retired": N_("Instance retirée"),
    "instance.reactivated": N_("Instance réactivée"),
    "instance.suspend_with_hoster": N_("Instance suspendue avec son hébergeur"),
    "instance.reinstate_with_hoster": N_("Instance rétablie avec son hébergeur"),
    "instance.exclude_with_hoster": N_("Instance retirée avec son hébergeur exclu"),
    "instance.down_flagged": N_("Instance signalée injoignable"),
    "instance.up_again": N_("Instance de nouveau en ligne"),
    "instance.certificate_expiring": N_("Certificat HTTPS bientôt expiré"),
    "instance.secret_issued": N_("Secret client remis"),
    "instance.secret_rotated": N_("Secret client renouvelé"),
    "instance.client_upgraded": N_("Client OpenID Connect mis à jour"),
    "instance.file_created": N_("Instance créée depuis instances.toml"),
    "instance.file_updated": N_("Instance mise à jour depuis instances.toml"),
    "instance.link_requested": N_("Lien à un organisme demandé"),
    "instance.link_accepted": N_("Lien à un organisme accepté"),
    "instance.link_refused": N_("Lien à un organisme refusé"),
    "instance.link_removed": N_("Lien à un organisme retiré"),
    "instance.organization_accepted": N_("Service accepté par l’organisme"),
    "instance.organization_refused": N_("Service refusé par l’organisme"),
    "instance.organization_withdrawn": N_("Acceptation retirée par l’organisme"),
    "instance.move_requested": N_("Changement d’adresse demandé"),
    "instance.move_cancelled": N_("Changement d’adresse annulé"),
    "instance.moved": N_("Adresse changée"),
    "instance.transfer_offered": N_("Transfert proposé à un autre hébergeur"),
    "instance.transfer_refused": N_("Transfert refusé"),
    "instance.transferred": N_("Instance transférée"),
    "instance.pia_recorded": N_("Évaluation des facteurs relatifs à la vie privée consignée"),
    "instance.proof_confirmed": N_("Preuve de contrôle confirmée"),
    "instance.proof_unconfirmed": N_("Preuve de contrôle à confirmer"),
    "instance.proof_lost": N_("Preuve de contrôle perdue"),
    "instance.proof_escalated": N_("Perte de la preuve signalée à la fédération"),
    "instance.proof_restored": N_("Preuve de contrôle rétablie"),
    "organization.hosting_requested": N_("Un hébergeur dit servir l’organisme"),
    "federation.url_refused": N_("Adresse refusée par le garde-fou"),
}


def audit_action(action: str) -> str:
    """The decision log's words for ``action`` (French source message), or the code when none is known."""
    return _AUDIT.get(action, action)
