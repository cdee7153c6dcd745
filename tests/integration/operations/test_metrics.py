"""``GET /metrics``: who may read it, and the series counted at each decision point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD, login
from tests.oidc_flow import Flow, basic, make_client

TOKEN = "metrics-scraper-token-0123456789"


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scraped(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.replace(metrics_token=TOKEN), migrate=False)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as test_client:
        yield test_client


def test_metrics_without_a_token_are_served_to_loopback_only(settings: Settings) -> None:
    app = create_app(settings, migrate=False)
    with TestClient(app, base_url=BASE_URL, client=("203.0.113.7", 40000)) as outsider:
        refused = outsider.get("/metrics")
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert "portail_" not in refused.text
    with TestClient(app, base_url=BASE_URL, client=("127.0.0.1", 40000)) as local:
        served = local.get("/metrics")
        assert served.status_code == 200
        assert "portail_active_sessions" in served.text


def test_metrics_with_a_token_require_it_from_everyone(scraped: TestClient) -> None:
    assert scraped.get("/metrics").status_code == 401
    wrong = scraped.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert value(samples(scraped), "portail_active_sessions") >= 0


def test_logins_are_counted_by_result_and_sessions_are_seen_live(scraped: TestClient, member: Member) -> None:
    before = samples(scraped)
    failed = scraped.post("/login", data={"email": member.email, "password": "wrong-password", "csrf_token": "x"})
    assert failed.status_code in (400, 401)
    page = scraped.get("/login")
    assert page.status_code == 200
    login(scraped, member.email, PASSWORD)
    after = samples(scraped)
    name = "portail_logins_total"
    assert (
        value(after, name, method="password", result="success")
        == value(before, name, method="password", result="success") + 1
    )
    assert value(after, "portail_active_sessions") == value(before, "portail_active_sessions") + 1


def test_token_requests_are_counted_by_grant_and_result(
    scraped: TestClient, settings: Settings, member: Member
) -> None:
    client_id, secret = make_client(settings)
    assert secret is not None
    flow = Flow(scraped, client_id, secret)
    before = samples(scraped)
    tokens = flow.tokens()
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    refused = scraped.post(
        "/token", data={"grant_type": "authorization_code", "code": "nope"}, headers=basic(client_id, secret)
    )
    assert refused.status_code == 400
    odd = scraped.post("/token", data={"grant_type": "x-made-up"}, headers=basic(client_id, secret))
    assert odd.status_code == 400
    after = samples(scraped)
    name = "portail_token_requests_total"
    for grant, result in [
        ("authorization_code", "ok"),
        ("refresh_token", "ok"),
        ("authorization_code", "invalid_grant"),
        ("other", "unsupported_grant_type"),
    ]:
        assert (
            value(after, name, grant_type=grant, result=result)
            == value(before, name, grant_type=grant, result=result) + 1
        ), (grant, result)


def test_http_requests_are_labelled_by_route_template_never_the_raw_path(scraped: TestClient) -> None:
    before = samples(scraped)
    scraped.get("/authorize/resume/some-private-id-123")
    scraped.get("/no/such/page/secret-looking-path")
    scraped.get("/static/portail.css")
    after = samples(scraped)
    routes = {dict(labels).get("route") for (name, labels) in after if name == "portail_http_requests_total"}
    assert "/authorize/resume/{parked_id}" in routes
    assert not any("some-private-id-123" in (r or "") or "secret-looking" in (r or "") for r in routes)
    assert "<unmatched>" in routes
    assert "/static/{path}" in routes
    histogram = "portail_http_request_duration_seconds_count"
    assert (
        value(after, histogram, method="GET", route="<unmatched>")
        == value(before, histogram, method="GET", route="<unmatched>") + 1
    )


def test_queue_depths_and_breakers_are_read_at_scrape(scraped: TestClient) -> None:
    found = samples(scraped)
    assert ("portail_backchannel_queue_depth", frozenset({("status", "pending")})) in found
    assert ("portail_account_event_queue_depth", frozenset({("status", "retrying")})) in found
    assert ("portail_breakers", frozenset({("state", "open")})) in found
