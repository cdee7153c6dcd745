"""One JSON line per request with a request id; nothing secret in any log line."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.app import create_app
from portail.config import Settings
from tests.conftest import BASE_URL, PASSWORD
from tests.oidc_flow import Flow, make_client


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "portail.request"]


def test_each_request_logs_one_json_line_and_returns_its_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portail.request")
    response = client.get("/login?next=/privacy")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    [line] = request_lines(caplog)
    assert line == {
        "event": "request",
        "method": "GET",
        "route": "/login",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "request_id": request_id,
        "client": "testclient",
    }
    assert isinstance(line["duration_ms"], float)
    assert client.get("/login").headers["x-request-id"] != request_id


def test_a_request_id_is_taken_only_from_a_trusted_proxy(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="portail.request")
    app = create_app(settings, migrate=False)
    with TestClient(app, base_url=BASE_URL, client=("203.0.113.9", 4000)) as outsider:
        chosen = outsider.get("/login", headers={"X-Request-Id": "abc-123", "X-Forwarded-For": "198.51.100.1"})
        assert chosen.headers["x-request-id"] != "abc-123"
    with TestClient(app, base_url=BASE_URL, client=("127.0.0.1", 4000)) as proxy:
        relayed = proxy.get("/login", headers={"X-Request-Id": "abc-123", "X-Forwarded-For": "198.51.100.1"})
        assert relayed.headers["x-request-id"] == "abc-123"
        odd = proxy.get("/login", headers={"X-Request-Id": "bad id\twith spaces"})
        assert odd.headers["x-request-id"] != "bad id\twith spaces"
    lines = request_lines(caplog)
    assert [line["client"] for line in lines] == ["203.0.113.9", "198.51.100.1", "127.0.0.1"]


def test_no_secret_reaches_any_log_after_a_login_and_a_token_exchange(
    client: TestClient, settings: Settings, member: Member, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id, secret = make_client(settings)
    assert secret is not None
    flow = Flow(client, client_id, secret)
    code = flow.code()["code"]
    answer = flow.token(code)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    refreshed = flow.refresh(tokens["refresh_token"]).json()
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {refreshed['access_token']}"}).status_code == 200
    secrets_seen = [
        PASSWORD,
        secret,
        code,
        flow.verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["refresh_token"],
        *client.cookies.values(),
    ]
    portail_side = [record for record in caplog.records if not record.name.startswith("httpx2")]  # the test's client
    text = "\n".join([record.getMessage() for record in portail_side] + [str(record.args) for record in portail_side])
    assert request_lines(caplog), "the requests were logged"
    for value in secrets_seen:
        assert value and value not in text
    assert (
        "code=" not in text
        and "token=" not in text
        and "?" not in "".join(str(line["route"]) for line in request_lines(caplog))
    )
