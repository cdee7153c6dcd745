"""Odd bytes never get a 500: too-large bodies on the protocol endpoints are OAuth JSON 413s, NUL
in a query or form is a 400, ids no row can have are 404s, and a seeded (deterministic) fuzz of the
JSON and form endpoints gets only 4xx JSON answers."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.oidc import initial_tokens
from tests.conftest import csrf_from, db_call, login
from tests.integration.notifications.conftest import make_pusher, sub_of

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/register", "/api/v1/notifications"])
def test_a_body_over_a_megabyte_is_an_oauth_json_413_not_a_page(client: TestClient, path: str) -> None:
    response = client.post(path, content=b"a=" + b"x" * 1_100_000, headers=FORM)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_request"


def test_a_chunked_body_over_a_megabyte_is_a_json_413_on_the_token_endpoint(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = client.post("/token", content=chunks(), headers=FORM)
    assert response.status_code in (400, 413) and response.json()["error"] == "invalid_request"


def test_pages_still_answer_413_with_a_page(client: TestClient) -> None:
    response = client.post("/login", content=b"a=" + b"x" * 1_100_000, headers=FORM)
    assert response.status_code == 413 and response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "url",
    [
        "/authorize?client_id=%00&response_type=code&scope=openid",
        "/userinfo?access_token=%00",
        "/api/v1/me/notifications?type=%00",
        "/login?next=%00",
    ],
)
def test_nul_in_a_query_string_is_a_400(client: TestClient, member: Member, url: str) -> None:
    """PostgreSQL cannot compare text with NUL: refused at the door on both databases."""
    login(client)
    assert client.get(url).status_code == 400


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", b"grant_type=authorization_code&code=%00"),
        ("/introspect", b"token=%00"),
        ("/revoke", b"token=abc&token_type_hint=%00"),
        ("/userinfo", b"access_token=%00"),
    ],
)
def test_nul_in_a_protocol_form_is_invalid_request(client: TestClient, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers=FORM)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_ids_no_row_can_have_are_not_found(client: TestClient, member: Member) -> None:
    """Ids are 32-bit on PostgreSQL ("integer out of range") and SQLite overflows past 2**63: such
    numbers never reach the database."""
    login(client)
    huge = "9" * 25
    for too_big in (huge, str(2**31), "999999999999999999"):
        assert client.post(f"/api/v1/me/notifications/{too_big}/read", json={}).status_code == 404
        assert client.post(f"/api/v1/me/notifications/{too_big}/dismiss", json={}).status_code == 404
        assert client.post(f"/account/api-tokens/{too_big}/revoke", data={}).status_code == 404
    assert client.post(f"/api/v1/me/notifications/{2**31 - 1}/read", json={}).status_code == 404  # no such row
    assert client.post("/api/v1/me/notifications/read-all", json={"tool": int(huge)}).status_code == 400
    preference = client.put("/api/v1/me/notifications/preferences", json={"tool": int(huge), "enabled": True})
    assert preference.status_code == 404
    unknown_tool = client.put("/api/v1/me/notifications/preferences", json={"tool": 4242, "enabled": True})
    assert unknown_tool.status_code == 404 and unknown_tool.json()["error"] == "not_found"
    listing = client.get(f"/api/v1/me/notifications?tool={huge}&before={huge}&limit=²")
    assert listing.status_code == 200


# ---------------------------------------------------------------- a seeded fuzz

PIECES: list[Any] = [
    "\ud800",
    "a\u0000b",
    "\x07",
    "Café 😀",
    "",
    " " * 3,
    10**30,
    -1,
    0,
    1.5e308,
    True,
    None,
    [],
    {},
    "https://evil.example/",
    "javascript:alert(1)",
    "x" * 3000,
]
KEYS = ["client_name", "redirect_uris", "notifications", "id", "sub", "title", "tool", "enabled", "digest", "jwks"]


def _value(rng: random.Random, pieces: list[Any], depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(pieces)
    if roll < 0.75:
        return [_value(rng, pieces, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): _value(rng, pieces, depth + 1) for _ in range(rng.randint(0, 4))}


def _body(rng: random.Random, pieces: list[Any]) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if kind == 1:
        depth = rng.choice([10, 40, 1500])
        return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == 2:
        return b'{"a": ' + rng.choice([b"NaN", b"Infinity", b"1" * 5000, b'"\\ud800"', b'"\\u0000"']) + b"}"
    document = {rng.choice(KEYS): _value(rng, pieces) for _ in range(rng.randint(1, 5))}
    if kind == 3:
        document = {"notifications": [_value(rng, pieces) for _ in range(rng.randint(1, 5))]}
    return json.dumps(document).encode()


def test_a_seeded_fuzz_of_json_and_form_endpoints_gets_only_4xx_json(
    client: TestClient, app: Starlette, settings: Settings, member: Member
) -> None:
    rng = random.Random(7591)
    initial, _ = db_call(settings, lambda s: initial_tokens.create(s, uses=10_000))
    registered = client.post(
        "/register",
        json={"client_name": "Fuzz", "redirect_uris": ["https://fuzz.example/cb"]},
        headers={"Authorization": f"Bearer {initial}"},
    ).json()
    pusher = make_pusher(app)
    sub = sub_of(app, member, pusher)
    pieces = [*PIECES, sub, {"id": "n-1", "sub": sub, "title": "Bonjour"}]
    push_token = pusher.token()
    login(client)
    targets: list[tuple[str, str, dict[str, str]]] = [
        ("POST", "/register", {"Authorization": f"Bearer {initial}"}),
        (
            "PUT",
            registered["registration_client_uri"],
            {"Authorization": f"Bearer {registered['registration_access_token']}"},
        ),
        ("POST", "/api/v1/notifications", {"Authorization": f"Bearer {push_token}"}),
        ("POST", "/api/v1/me/notifications/read-all", {}),
        ("PUT", "/api/v1/me/notifications/preferences", {}),
        ("POST", "/token", {}),
        ("POST", "/introspect", {}),
        ("POST", "/revoke", {}),
    ]
    answered: dict[int, int] = {}
    for _ in range(240):
        method, url, headers = rng.choice(targets)
        content_type = rng.choice([JSON, JSON, JSON, FORM, {"Content-Type": "text/plain"}, {}])
        response = client.request(method, url, content=_body(rng, pieces), headers={**headers, **content_type})
        assert response.status_code < 500, (method, url, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/json"), (url, response.text[:200])
        response.json()
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
    assert {400, 415} <= set(answered), answered  # the fuzz reached the reader's refusals


@pytest.mark.parametrize(
    "url",
    ["/organizations/%00", "/authorize/resume/%00", "/api/v1/federation/hosters/a%00b", "/account/data/tools/%00"],
)
def test_nul_in_a_path_is_not_found(client: TestClient, member: Member, url: str) -> None:
    login(client)
    assert client.get(url).status_code == 404


def test_digits_that_are_not_ascii_and_huge_pages_are_not_crashes(client: TestClient, member: Member) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails: numbers from a query are read with care."""
    login(client)
    assert client.get("/account/data/ledger?page=²").status_code == 200
    assert client.get("/account/data/ledger?page=" + "9" * 5000).status_code == 200
    assert client.get("/notifications?tool=²&before=" + "9" * 30).status_code == 200


NASTY_PARTS = ["", "%00", "%ff%fe", "²", "9" * 30, str(2**31), "-1", "<script>", "%ED%A0%80", "a" * 3000, "é", "1"]
QUERY_NAMES = ["page", "tool", "next", "q", "client_id", "redirect_uri", "before", "limit", "hoster", "type", "max_age"]
FORM_NAMES = ["email", "name", "tool", "enabled", "digest", "days", "remove", "territory", "decision", "slug", "token"]


def test_a_seeded_fuzz_of_every_route_s_path_query_and_form_never_gets_a_500(
    client: TestClient, settings: Settings, member: Member
) -> None:
    """Every route of the application, with odd path parameters, query strings and form fields."""
    from starlette.routing import Route

    rng = random.Random(2026)
    login(client)
    csrf = csrf_from(client.get("/account").text)
    routes = [
        (route.path, sorted(m for m in route.methods or {"GET"} if m != "HEAD"))
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and not any(word in route.path for word in ("stream", "logout", "delete", "end"))
    ]
    for _ in range(300):
        path, methods = rng.choice(routes)
        target = re.sub(r"\{[^}]+\}", lambda _m: rng.choice(["1", "abc", str(2**31), "%00", "x%2Fy"]), path)
        query = "&".join(f"{rng.choice(QUERY_NAMES)}={rng.choice(NASTY_PARTS)}" for _ in range(rng.randint(0, 3)))
        url = f"{target}?{query}" if query else target
        method = rng.choice(methods)
        fields = {rng.choice(FORM_NAMES): rng.choice(NASTY_PARTS) for _ in range(rng.randint(0, 3))}
        response = (
            client.get(url) if method == "GET" else client.request(method, url, data={"csrf_token": csrf, **fields})
        )
        assert response.status_code < 500, (method, url, fields, response.status_code)
