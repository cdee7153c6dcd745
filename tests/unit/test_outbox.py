"""The shared outbox (``portail/outbox.py``) on both delivery tables — back-channel logouts and account
events — against a real SQLite database: one claimant per due row, a lease after which a killed sender's
row is due again, backoff doubling up to its cap, final failure, and the count of what waits."""

from __future__ import annotations

import datetime as dt

import pytest

from portail import db as database
from portail import outbox
from portail.consent.models import AccountEventDelivery
from portail.oidc.models import BackchannelDelivery

POLICY = outbox.Policy(first_backoff=10, max_backoff=60, max_attempts=3, lease=dt.timedelta(seconds=30))
KINDS = [BackchannelDelivery, AccountEventDelivery]


def _row(model: type[outbox.DeliveryColumns], n: int) -> outbox.DeliveryColumns:
    base = {"client_id": "tool", "uri": "https://tool.example/receive"}
    if model is BackchannelDelivery:
        return BackchannelDelivery(**base, sid=f"s{n}", subject="sub")
    return AccountEventDelivery(**base, jti=f"jti-{n}", event_type="purged", token="signed")


def _add(db: database.Database, model: type[outbox.DeliveryColumns], count: int) -> None:
    with db.session() as s:
        for n in range(count):
            s.add(_row(model, n))


def test_backoff_doubles_and_stops_at_its_cap() -> None:
    assert [POLICY.backoff(n).total_seconds() for n in (1, 2, 3, 4, 10)] == [10, 20, 40, 60, 60]


@pytest.mark.parametrize("model", KINDS)
def test_a_due_row_is_claimed_once_until_its_lease_runs_out(
    db: database.Database, model: type[outbox.DeliveryColumns]
) -> None:
    _add(db, model, 3)
    now = database.utcnow() + dt.timedelta(seconds=1)
    first = db.call(outbox.claim_due, model, POLICY.lease, 2, now)
    second = db.call(outbox.claim_due, model, POLICY.lease, 10, now)
    assert len(first) == 2 and len(second) == 1
    assert {r.id for r in first}.isdisjoint({r.id for r in second})
    assert db.call(outbox.claim_due, model, POLICY.lease, 10, now + dt.timedelta(seconds=29)) == []
    # the sender died holding them: after the lease every row is due again, for another process
    again = db.call(outbox.claim_due, model, POLICY.lease, 10, now + dt.timedelta(seconds=31))
    assert sorted(r.id for r in again) == sorted(r.id for r in [*first, *second])


@pytest.mark.parametrize("model", KINDS)
def test_attempts_end_sent_retrying_or_failed(db: database.Database, model: type[outbox.DeliveryColumns]) -> None:
    _add(db, model, 3)
    now = database.utcnow()
    ids = [r.id or 0 for r in db.call(outbox.claim_due, model, POLICY.lease, 10, now + dt.timedelta(seconds=1))]
    assert db.call(outbox.unsettled, model) == 3

    def attempt(row_id: int, result: outbox.Attempt) -> tuple[str, int, dt.datetime, str]:
        row = db.call(outbox.record, model, row_id, result, POLICY, now)
        assert row is not None
        return row.status, row.attempts, row.next_attempt_at, row.last_error

    assert attempt(ids[0], outbox.Attempt(True, 202))[:2] == ("sent", 1)
    status, attempts, next_at, error = attempt(ids[1], outbox.Attempt(False, 503, "HTTP 503"))
    assert (status, attempts, error) == ("retrying", 1, "HTTP 503") and next_at == now + dt.timedelta(seconds=10)
    assert attempt(ids[1], outbox.Attempt(False, None, "timeout"))[:2] == ("retrying", 2)
    assert attempt(ids[1], outbox.Attempt(False, None, "timeout"))[:2] == ("failed", 3)  # attempts spent
    assert attempt(ids[2], outbox.Attempt(False, 400, "refused", permanent=True))[:2] == ("failed", 1)
    assert db.call(outbox.unsettled, model) == 0
    assert db.call(outbox.record, model, 999_999, outbox.Attempt(True), POLICY, now) is None  # gone
