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
