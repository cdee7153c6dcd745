"""The web shell's pure parts: language negotiation, translation, security headers."""

from __future__ import annotations

import datetime as dt

import pytest

from portail.config import load_settings
from portail.web import TEMPLATES_ENV, pick_locale, security_headers, translate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "fr-CA"),
        ("", "fr-CA"),
        ("en-US,en;q=0.9", "en"),
        ("en", "en"),
        ("EN-gb", "en"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr-CA"),
        ("fr-FR", "fr-CA"),
        ("fr", "fr-CA"),
        ("de-DE,de;q=0.9,en;q=0.5", "en"),
        ("de-DE,fr;q=0.4,en;q=0.5", "en"),
        ("en;q=0.2,fr;q=0.8", "fr-CA"),
        ("de, es", "fr-CA"),
        ("*", "fr-CA"),
        ("en;q=0, fr", "fr-CA"),
        ("en;q=zero", "fr-CA"),
        (";;;,,,", "fr-CA"),
        ("x" * 5000, "fr-CA"),
    ],
)
def test_pick_locale_follows_accept_language(header: str | None, expected: str) -> None:
    assert pick_locale(header, "fr-CA") == expected


def test_pick_locale_falls_back_to_the_configured_default() -> None:
    assert pick_locale("de", "en") == "en"
    assert pick_locale(None, "en") == "en"
    assert pick_locale("fr", "en") == "fr-CA"


def test_translate_fills_parameters_in_both_languages() -> None:
    source = "Trop de tentatives. Réessayez dans %(seconds)s secondes."
    assert translate("fr-CA", source, seconds=3) == "Trop de tentatives. Réessayez dans 3 secondes."
    assert translate("en", source, seconds=3) == "Too many attempts. Try again in 3 seconds."
    assert translate("xx", "Erreur") == "Erreur"


def test_security_headers_forbid_inline_script_and_framing() -> None:
    headers = security_headers(secure=False)
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]
    assert "Strict-Transport-Security" not in headers
    assert "max-age=" in security_headers(secure=True)["Strict-Transport-Security"]


def test_pages_show_stored_utc_times_in_portails_time_zone() -> None:
    template = TEMPLATES_ENV.from_string(
        "{{ when|local }}|{{ when|local('%H:%M') }}|{{ day|local('%Y-%m-%d') }}|{{ none|local }}"
    )
    settings = load_settings(environ={}, toml_path="/nonexistent/portail.toml", secret_key="k" * 40)
    winter = dt.datetime(2026, 1, 15, 4, 37, tzinfo=dt.UTC)  # EST, UTC-5
    summer = dt.datetime(2026, 7, 15, 4, 37, tzinfo=None)  # noqa: DTZ001 - naive values are taken as UTC; EDT
    day = dt.date(2026, 11, 22)
    assert template.render(when=winter, day=day, none=None, settings=settings) == "2026-01-14 23:37|23:37|2026-11-22|"
    assert template.render(when=summer, day=day, none=None, settings=settings).startswith("2026-07-15 00:37|")
    paris = settings.replace(timezone="Europe/Paris")
    assert template.render(when=winter, day=day, none=None, settings=paris).startswith("2026-01-15 05:37|")


def test_int_path_parameters_stop_at_the_largest_postgresql_integer() -> None:
    """``{id:int}`` matches 0 … 2**31 - 1 only: a larger number is a 404, never "integer out of range"."""
    import random
    import re

    from portail.web import RowIdConvertor

    matches = re.compile(RowIdConvertor.regex + r"\Z").match
    rng = random.Random(31)
    numbers = [
        0,
        1,
        9,
        10,
        2**31 - 1,
        2**31,
        10**10,
        *(rng.randrange(2**31 - 10**4, 2**31 + 10**4) for _ in range(5000)),
    ]
    for number in numbers:
        assert bool(matches(str(number))) == (number < 2**31), number
