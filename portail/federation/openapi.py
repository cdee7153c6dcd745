"""The OpenAPI 3.1 document of Portail's JSON API, served at ``/api/v1/openapi.json``.

The document is data: ``openapi.json`` beside this module (packaged with the wheel), read once when
the application starts. Only the public URL changes from one Portail to another: ``document(issuer)``
puts it in ``servers`` and in the client-credentials ``tokenUrl``. When you add or change an
operation under ``/api/v1``, edit the file; ``tests/unit/federation/test_openapi.py`` checks it
against the code (every ``/api/v1`` route described, the scopes, the push limits, the regions).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

FILE_NAME = "openapi.json"


@cache
def description() -> dict[str, Any]:
    """The document as written in ``openapi.json`` (read once; treat it as read-only)."""
    text = resources.files("portail.federation").joinpath(FILE_NAME).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def document(issuer: str) -> dict[str, Any]:
    """The whole OpenAPI document for a Portail whose public URL is ``issuer``."""
    base = description()
    components = base["components"]
    schemes = components["securitySchemes"]
    hoster = schemes["hosterClient"]
    flow = hoster["flows"]["clientCredentials"]
    return {
        **base,
        "servers": [{"url": issuer}],
        "components": {
            **components,
            "securitySchemes": {
                **schemes,
                "hosterClient": {**hoster, "flows": {"clientCredentials": {**flow, "tokenUrl": f"{issuer}/token"}}},
            },
        },
    }
