"""Québec's seventeen administrative regions (codes 01–17, official names): the one table every
package uses — organizations and territories, hosters, the directory and its filters, the
``instances.toml`` file, the discovery of tools near a member."""

from __future__ import annotations

import re
import unicodedata

REGIONS: dict[str, str] = {
    "01": "Bas-Saint-Laurent",
    "02": "Saguenay–Lac-Saint-Jean",
    "03": "Capitale-Nationale",
    "04": "Mauricie",
    "05": "Estrie",
    "06": "Montréal",
    "07": "Outaouais",
    "08": "Abitibi-Témiscamingue",
    "09": "Côte-Nord",
    "10": "Nord-du-Québec",
    "11": "Gaspésie–Îles-de-la-Madeleine",
    "12": "Chaudière-Appalaches",
    "13": "Laval",
    "14": "Lanaudière",
    "15": "Laurentides",
    "16": "Montérégie",
    "17": "Centre-du-Québec",
}


def name(code: str | None) -> str:
    """The region's official name, or ``""`` for no or an unknown code."""
    return REGIONS.get(code or "", "")


def _folded(text: str) -> str:
    """Without accents or case, every run of other characters (spaces, dashes, en dashes) one ``-``."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", bare).strip("-")


def code_for(value: str) -> str | None:
    """A region given by its code (``05``, ``5``) or its name (``Estrie``, ``montreal``); ``None`` if unknown."""
    value = value.strip()
    if value.isdigit() and f"{int(value):02d}" in REGIONS:
        return f"{int(value):02d}"
    wanted = _folded(value)
    return next((code for code, region in REGIONS.items() if wanted and _folded(region) == wanted), None)
