"""Raw probe errors become one plain sentence; an unknown error still gets one, an empty one none."""

from __future__ import annotations

import pytest

from portail.web import translate
from portail.web.labels import PROBE_OTHER, audit_action, probe_problem


@pytest.mark.parametrize(
    ("raw", "summary"),
    [
        ("dns: Le nom nuage.example ne se résout pas.", "Le nom de domaine de l’instance ne répond pas (DNS)."),
        ("ConnectError: [Errno -2] Name or service not known", "Le nom de domaine de l’instance ne répond pas (DNS)."),
        ("unreachable: Connexion impossible à nuage.example.", "L’instance ne répond pas : la connexion a échoué."),
        ("timeout: probe took too long", "L’instance a mis trop de temps à répondre."),
        ("slow: 2400 ms (over 1500 ms)", "L’instance répond, mais lentement."),
        ("status.php answered 502", "L’instance a répondu par une erreur."),
        (
            "status.php: unreadable answer (not JSON)",
            "L’instance a répondu, mais pas comme cet outil devrait le faire.",
        ),
        ("Nextcloud not installed or in maintenance", "L’outil est en maintenance ou pas encore installé."),
    ],
)
def test_probe_errors_are_summarized(raw: str, summary: str) -> None:
    assert probe_problem(raw) == summary


def test_an_unknown_error_gets_the_general_summary_and_no_error_none() -> None:
    assert probe_problem("something odd happened") == PROBE_OTHER
    assert probe_problem("  ") == ""


def test_the_decision_log_says_what_happened_in_both_languages() -> None:
    assert audit_action("instance.down_flagged") == "Instance signalée injoignable"
    assert translate("en", audit_action("instance.down_flagged")) == "Instance flagged unreachable"
    assert translate("en", audit_action("hoster.active")) == "Hoster reinstated"
    assert audit_action("something.new") == "something.new"  # an unknown action keeps its readable code
