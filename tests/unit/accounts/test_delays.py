"""Delays in words with correct plurals, in both languages (issue 12: never "1 secondes")."""

from __future__ import annotations

from portail.accounts import delays


def in_words(seconds: float, locale: str) -> str:
    return delays.in_words(seconds, locale).replace("\u00a0", " ")  # French puts a no-break space before the unit


def test_delays_are_said_in_words_with_correct_plurals() -> None:
    assert in_words(1, "fr-CA") == "1 seconde"
    assert in_words(45, "fr-CA") == "45 secondes"
    assert in_words(60, "fr-CA") == "1 minute"
    assert in_words(900, "fr-CA") == "15 minutes"
    assert in_words(3600, "en") == "1 hour"
    assert in_words(1, "en") == "1 second"


def test_a_delay_is_never_said_as_nothing() -> None:
    assert in_words(0, "fr-CA") == "1 seconde"
    assert in_words(0.2, "en") == "1 second"
