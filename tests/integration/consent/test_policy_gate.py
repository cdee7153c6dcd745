"""Every page of the application, for a member with a pending step (a material policy change to
accept) and for an unverified member: the first is sent to the review (``next`` back) except on the
pages the step needs (``OPEN_DURING_STEPS``); the second never loops through the login page."""

from __future__ import annotations

from urllib.parse import quote

from starlette.routing import Route
from starlette.testclient import TestClient

from portail.accounts.current import SKIP_PREFIXES
from portail.app import OPEN_DURING_STEPS
from portail.config import Settings
from portail.consent import policy
from portail.oidc.routes import MACHINE_PATHS
from tests.conftest import create_member, db_call, login


def _get_pages(client: TestClient) -> list[str]:
    """Every GET route without path parameters (the pages a member can open by typing their address)."""
    routes = client.app.routes  # type: ignore[attr-defined]
    return sorted(
        r.path
        for r in routes
        if isinstance(r, Route)
        and "GET" in (r.methods or set())
        and "{" not in r.path
        and not r.path.startswith((*SKIP_PREFIXES, *MACHINE_PATHS))  # protocol endpoints and APIs: no session
        and r.path != "/notifications/stream"  # never ends (Server-Sent Events); open during steps
    )


def _open(path: str) -> bool:
    return path in OPEN_DURING_STEPS or path.startswith(tuple(p for p in OPEN_DURING_STEPS if p.endswith("/")))


def test_a_pending_policy_review_closes_every_page_but_those_it_needs(client: TestClient, settings: Settings) -> None:
    create_member(settings, privacy_version="2026-11")
    db_call(
        settings,
        lambda s: policy.publish(s, version="2027-01", material=True, summary_fr="Changements", summary_en="Changes"),
    )
    login(client, next_url="/account")
    for path in _get_pages(client):
        if path == "/privacy/review":
            continue
        response = client.get(path)
        review = f"/privacy/review?next={quote(path, safe='')}"
        if _open(path):
            assert response.headers.get("location") != review, path
        else:
            assert response.status_code == 303 and response.headers["location"] == review, path
    assert client.post("/account/profile", data={}).headers["location"] == "/privacy/review?next=%2F"


def test_an_unverified_member_never_loops_through_the_login_page(client: TestClient, settings: Settings) -> None:
    create_member(settings, verified=False)
    login(client)
    for path in _get_pages(client):
        if path in ("/login", "/logout", "/verify"):
            continue
        response = client.get(path)
        assert not response.headers.get("location", "").startswith("/login"), path
