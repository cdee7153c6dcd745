"""After a purge, the member's Matrix devices are logged out through the outbound guard: the
homeserver's URL is hoster-supplied (``purge.log_out_devices``, ``notifications.fetcher.guarded``)."""

from __future__ import annotations

import asyncio

from portail.config import Settings
from portail.consent import purge
from tests.conftest import HttpRecorder


def _report(base_url: str) -> purge.PurgeReport:
    return purge.PurgeReport("ref", 1, 0, 0, devices=((base_url, "syt_token"),))


def test_devices_on_a_private_address_are_not_contacted(unit_settings: Settings, http_recorder: HttpRecorder) -> None:
    strict = unit_settings.replace(allow_private_addresses=False)
    base = http_recorder.url("").rstrip("/")
    assert asyncio.run(purge.log_out_devices(strict, [_report(base)])) == 0
    assert http_recorder.requests == []


def test_devices_are_logged_out_where_the_guard_allows(unit_settings: Settings, http_recorder: HttpRecorder) -> None:
    base = http_recorder.url("").rstrip("/")
    assert asyncio.run(purge.log_out_devices(unit_settings, [_report(base)])) == 1
    [request] = http_recorder.requests
    assert (request.method, request.path) == ("POST", "/_matrix/client/v3/logout")
    assert request.headers["authorization"] == "Bearer syt_token"
