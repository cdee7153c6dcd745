"""Every French source message has an English translation.

Messages are extracted with Babel from the Python code under ``portail/`` (calls listed in
``PYTHON_KEYWORDS``) and from the Jinja templates under ``portail/templates/`` (``_("…")`` calls, through
Jinja's own Babel extractor), then looked up in the merged catalogues ``portail/locale/en/*.po``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE_EN = ROOT / "portail" / "locale" / "en"

# Calls whose argument N (1-based) is a French source message. Extend this when your package adds a
# function or an exception class that carries a French message (e.g. ``"NodeError": (1,)``).
#   _(request, "…")           routes: translate for this request
#   translate(locale, "…")    translate for a given language
#   N_("…")                   mark a message translated later (constants, mail subjects)
#   AccountError("…")         domain errors of accounts, translated by the routes
#   PasskeyRefused("…")       refused WebAuthn ceremonies (accounts/mfa/webauthn.py)
#   ConsentError("…")         domain errors of consent, translated by the routes
#   FederationError("…")      domain errors of the federation registry, translated by the routes
#   Refused(code, "…")        refusals of the outbound guard (portail/outbound.py) and the challenge check
#   ShowError("…")            error pages of the OIDC provider (oidc/authorization_request.py)
#   BridgeError("…")          refusals of the Keycloak bridge (keycloak/errors.py), printed by its commands
PYTHON_KEYWORDS: dict[str, tuple[int, ...]] = {
    "_": (2,),
    "translate": (2,),
    "N_": (1,),
    "AccountError": (1,),
    "PasskeyRefused": (1,),
    "ConsentError": (1,),
    "OrganizationNotFound": (1,),
    "OrganizationForbidden": (1,),
    "FederationError": (1,),
    "Refused": (2,),
    "ShowError": (1,),
    "BridgeError": (1,),
}

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")


def _messages_in(method: str, folder: Path, keywords: dict[str, tuple[int, ...]] | None = None) -> Iterator[str]:
    pattern = "**.py" if method == "python" else "**.*"
    options = {"**.html": {"extensions": ""}, "**.txt": {"extensions": ""}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(folder),
        method_map=[(pattern, method if method == "python" else "jinja2.ext:babel_extract")],
        options_map=options,
        keywords=keywords or {"_": None},
        strip_comment_tags=True,
    ):
        if isinstance(message, tuple):
            message = message[0]
        if message:
            yield f"{folder.name}/{filename}:{lineno}\t{message}"


def extracted_places() -> list[tuple[str, str]]:
    """(place, French message) for every use of a message."""
    entries = [
        *_messages_in("python", ROOT / "portail", PYTHON_KEYWORDS),
        *_messages_in("jinja", ROOT / "portail" / "templates"),
    ]
    return [(where, message) for where, message in (entry.split("\t", 1) for entry in entries)]


def extracted_messages() -> dict[str, str]:
    """French message -> first place it is used."""
    found: dict[str, str] = {}
    for where, message in extracted_places():
        found.setdefault(message, where)
    return found


def english_catalogue() -> Catalog:
    merged = Catalog(locale="en")
    for po in sorted(LOCALE_EN.glob("*.po")):
        with po.open("rb") as handle:
            for entry in read_po(handle, locale="en"):
                if entry.id:
                    merged[entry.id] = entry
    return merged


def test_extraction_finds_messages_in_code_and_templates() -> None:
    """Guard the guard: an extractor that finds nothing would make the next test pass vacuously."""
    places = [where for where, _message in extracted_places()]
    assert any(p.startswith("portail/") for p in places)
    assert any(p.startswith("templates/") and ".html" in p for p in places)
    assert any(p.startswith("templates/mail/") and p.split(":")[0].endswith(".txt") for p in places)


def test_every_french_message_has_an_english_translation() -> None:
    catalogue = english_catalogue()
    missing = [
        f"{where}: {message!r}"
        for message, where in sorted(extracted_messages().items(), key=lambda item: item[1])
        if not (entry := catalogue.get(message)) or not str(entry.string or "").strip()
    ]
    assert not missing, "Messages sans traduction anglaise / untranslated messages:\n" + "\n".join(missing)


def test_translations_keep_the_placeholders_of_their_source() -> None:
    wrong = [
        f"{entry.id!r} -> {entry.string!r}"
        for entry in english_catalogue()
        if entry.id
        and entry.string
        and set(PLACEHOLDER.findall(str(entry.id))) != set(PLACEHOLDER.findall(str(entry.string)))
    ]
    assert not wrong, "Placeholders differ:\n" + "\n".join(wrong)


@pytest.mark.parametrize("po", sorted(LOCALE_EN.glob("*.po")), ids=lambda p: p.name)
def test_catalogue_has_no_duplicate_or_fuzzy_entry(po: Path) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{po.name}: fuzzy entries {fuzzy}"
    ids = re.findall(r'^msgid "(.+)"$', po.read_text(encoding="utf-8"), flags=re.M)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{po.name}: duplicate msgid {duplicates}"
