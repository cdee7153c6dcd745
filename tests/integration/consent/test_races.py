"""Concurrent requests on both databases: one withdrawal wins, one deletion request wins."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlmodel import Session, select

from portail.config import Settings
from portail.consent import deletion, withdrawal
from portail.consent.errors import ConsentError
from portail.consent.models import DeletionRequest
from portail.db import Database
from portail.oidc.models import ConsentEvent
from tests.unit.consent.population import populate


def _twice(settings: Settings, fn: Callable[[Session], object]) -> list[str]:
    handle = Database(settings)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def attempt() -> None:
        start.wait()
        try:
            handle.call(fn)
            outcomes.append("done")
        except ConsentError as exc:
            outcomes.append(str(exc.status))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handle.dispose()
    return sorted(outcomes)


def test_two_withdrawals_at_once_write_one_event(settings: Settings) -> None:
    handle = Database(settings)
    member_id = handle.call(populate).member_id
    handle.dispose()
    assert _twice(settings, lambda s: withdrawal.withdraw(s, member_id, "nuage")) == ["409", "done"]
    handle = Database(settings)
    events = handle.call(lambda s: s.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")).all())
    handle.dispose()
    assert len(events) == 1


def test_two_deletion_requests_at_once_record_one(settings: Settings) -> None:
    handle = Database(settings)
    member_id = handle.call(populate).member_id
    handle.dispose()
    assert _twice(settings, lambda s: deletion.request_deletion(s, settings, member_id)) == ["409", "done"]
    handle = Database(settings)
    rows = handle.call(lambda s: s.exec(select(DeletionRequest).where(DeletionRequest.status == "pending")).all())
    handle.dispose()
    assert len(rows) == 1
