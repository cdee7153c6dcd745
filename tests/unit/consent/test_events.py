"""RFC 8417 SETs pushed per RFC 8935: what is sent, retries with backoff, giving up, never hanging."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlmodel import select

from portail.config import Settings
from portail.consent import events
from portail.consent.models import AccountEventDelivery
from portail.db import Database, utcnow
from tests.conftest import Receiver

KEY = RSAKey.generate_key(2048)


def sign(claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "typ": "secevent+jwt"}, claims, KEY)


def _queue(db: Database, settings: Settings, uri: str) -> None:
    with db.session() as session:
        events.schedule(session, settings, [events.Recipient("nuage", uri, "sub-123")], sign, reference="ref1")


def _rows(db: Database) -> list[AccountEventDelivery]:
    with db.session() as session:
        return list(session.exec(select(AccountEventDelivery)))


def test_a_set_is_posted_as_secevent_jwt_and_settled(db: Database, unit_settings: Settings, receiver: Receiver) -> None:
    """RFC 8935 §2.1: POST, Content-Type application/secevent+jwt, body the compact JWT."""
    _queue(db, unit_settings, f"{receiver.url}/events")
    counts = asyncio.run(events.deliver_due(db, unit_settings))
    assert counts == {"sent": 1}
    [(method, path, headers, body)] = receiver.requests
    assert (method, path) == ("POST", "/events")
    assert headers["Content-Type"] == "application/secevent+jwt"
    token = jwt.decode(body.decode(), KEY)
    assert token.header["typ"] == "secevent+jwt"
    claims = token.claims
    assert claims["aud"] == "nuage" and claims["iss"] == unit_settings.issuer
    assert isinstance(claims["iat"], int) and claims["jti"]
    assert claims["events"] == {
        events.ACCOUNT_PURGED: {"subject": {"format": "iss_sub", "iss": unit_settings.issuer, "sub": "sub-123"}}
    }
    [row] = _rows(db)
    assert (row.status, row.attempts, row.last_status_code, row.token) == ("sent", 1, 202, "")
    assert row.jti == claims["jti"] and row.deletion_reference == "ref1"


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(
    db: Database, unit_settings: Settings, receiver: Receiver
) -> None:
    settings = unit_settings.replace(account_event_max_attempts=3)
    receiver.status = 503
    _queue(db, settings, f"{receiver.url}/events")
    assert asyncio.run(events.deliver_due(db, settings)) == {"retrying": 1}
    [row] = _rows(db)
    assert row.last_status_code == 503 and row.token
    assert row.next_attempt_at - utcnow() > dt.timedelta(seconds=20)
    assert asyncio.run(events.deliver_due(db, settings)) == {}  # not due yet
    later = row.next_attempt_at + dt.timedelta(seconds=1)
    assert asyncio.run(events.deliver_due(db, settings, now=later)) == {"retrying": 1}
    second = _rows(db)[0]
    assert second.next_attempt_at - later > dt.timedelta(seconds=50)  # backoff doubled
    final = asyncio.run(events.deliver_due(db, settings, now=second.next_attempt_at + dt.timedelta(days=1)))
    assert final == {"failed": 1}
    [row] = _rows(db)
    assert (row.status, row.attempts, row.token) == ("failed", 3, "")
    assert len(receiver.requests) == 3


def test_a_hanging_endpoint_times_out_and_is_retried(db: Database, unit_settings: Settings, receiver: Receiver) -> None:
    settings = unit_settings.replace(outbound_timeout_seconds=0.3)
    receiver.hang = 2.0
    _queue(db, settings, f"{receiver.url}/events")
    assert asyncio.run(events.deliver_due(db, settings)) == {"retrying": 1}
    [row] = _rows(db)
    assert "Timeout" in row.last_error and row.last_status_code is None


def test_an_unreachable_endpoint_is_retried(db: Database, unit_settings: Settings) -> None:
    _queue(db, unit_settings, "http://127.0.0.1:9/events")
    assert asyncio.run(events.deliver_due(db, unit_settings)) == {"retrying": 1}


@pytest.mark.parametrize(
    "uri", ["ftp://example.org/x", "http://user:pw@127.0.0.1/x", "https://example.org/x#frag", "not a url"]
)
def test_a_malformed_endpoint_is_never_contacted(db: Database, unit_settings: Settings, uri: str) -> None:
    _queue(db, unit_settings, uri)
    asyncio.run(events.deliver_due(db, unit_settings))
    [row] = _rows(db)
    assert row.status == "retrying" and "refused" in row.last_error


def test_plain_http_endpoints_need_the_setting(unit_settings: Settings) -> None:
    assert events.uri_allowed("https://nuage.example/events", unit_settings.replace(allow_http_instances=False))
    assert not events.uri_allowed("http://nuage.example/events", unit_settings.replace(allow_http_instances=False))


def test_a_delivery_taken_by_one_worker_is_not_taken_by_another(db: Database, unit_settings: Settings) -> None:
    _queue(db, unit_settings, "https://nuage.example/events")
    now = utcnow()
    first = db.call(events._claim_due, now, dt.timedelta(seconds=60))
    second = db.call(events._claim_due, now, dt.timedelta(seconds=60))
    assert len(first) == 1 and second == []


def test_a_private_address_is_refused_unless_the_setting_allows_it(unit_settings: Settings) -> None:
    settings = unit_settings.replace(allow_private_addresses=False)
    assert asyncio.run(events.refusal("http://127.0.0.1:8080/events", settings)).startswith("endpoint refused")
    assert asyncio.run(events.refusal("http://10.1.2.3/events", settings)) != ""
    assert asyncio.run(events.refusal("http://169.254.169.254/latest", unit_settings)) != ""  # metadata: never
    assert asyncio.run(events.refusal("http://127.0.0.1:8080/events", unit_settings)) == ""
