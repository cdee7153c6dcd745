"""The OpenAPI document (``portail/federation/openapi.json``) is data: these tests keep it true to the code."""

from __future__ import annotations

import json
import re

import openapi_spec_validator
from starlette.routing import Route

from portail.accounts.regions import REGIONS
from portail.federation import credentials, openapi
from portail.federation.routes import routes as federation_routes
from portail.notifications import push
from portail.notifications.api import routes as notification_api_routes
from portail.web import translate

# The member's own inbox under /api/v1/me is for the portal's scripts (session cookie), not published.
UNPUBLISHED = ("/api/v1/me/", "/api/v1/openapi.json")


def _described() -> set[tuple[str, str]]:
    return {(path, method) for path, operations in openapi.description()["paths"].items() for method in operations}


def _routed() -> set[tuple[str, str]]:
    found = set()
    for route in (*federation_routes, *notification_api_routes):
        if isinstance(route, Route) and route.path.startswith("/api/v1/") and not route.path.startswith(UNPUBLISHED):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {id:int} is {id} in OpenAPI
            found |= {(path, method.lower()) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_published_api_route_is_described_and_nothing_else() -> None:
    assert _routed() == _described()


def test_the_document_names_the_issuer_where_it_is_served() -> None:
    served = openapi.document("https://portail.coop.example")
    assert served["servers"] == [{"url": "https://portail.coop.example"}]
    flow = served["components"]["securitySchemes"]["hosterClient"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://portail.coop.example/token"
    assert openapi.description()["servers"] != served["servers"]  # the file itself is left as it is
    assert {k: v for k, v in served.items() if k not in ("servers", "components")} == {
        k: v for k, v in openapi.description().items() if k not in ("servers", "components")
    }


def test_the_scopes_are_those_the_api_checks() -> None:
    flow = openapi.description()["components"]["securitySchemes"]["hosterClient"]["flows"]["clientCredentials"]
    expected = {name: translate("en", text) for name, text in credentials.SCOPES.items()}
    expected[push.SCOPE] = "Push notifications to members (client_credentials)"
    assert flow["scopes"] == expected
    operations = [op for ops in openapi.description()["paths"].values() for op in ops.values()]
    used = {scope for op in operations for rule in op["security"] for scope in rule.get("hosterClient", [])}
    assert used <= set(expected)


def test_the_push_limits_are_those_push_enforces() -> None:
    item = openapi.description()["components"]["schemas"]["PushItem"]["properties"]
    assert item["id"]["maxLength"] == push.MAX_ID
    assert f"{push.MAX_TITLE} chars" in item["title"]["description"]
    assert f"{push.MAX_BODY} chars" in item["body"]["description"]


def test_the_region_pattern_accepts_exactly_the_regions() -> None:
    schema = openapi.description()["components"]["schemas"]["HosterApplication"]["properties"]["region"]
    pattern = re.compile(schema["pattern"])
    assert {f"{n:02d}" for n in range(100) if pattern.match(f"{n:02d}")} == set(REGIONS)


def test_every_reference_resolves() -> None:
    text = json.dumps(openapi.description())
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', text))
    assert refs and refs <= set(openapi.description()["components"]["schemas"])


def test_the_document_is_valid_openapi_3_1() -> None:
    openapi_spec_validator.validate(openapi.document("https://portail.example.org"))
