"""The outbox of signed deliveries to the tools: one leased, retried queue shared by back-channel
logout (``oidc/backchannel.py``, table ``backchannel_delivery``) and account events
(``consent/events.py``, table ``account_event_delivery``).

Each kind keeps its own table, built on the shared column base ``DeliveryColumns`` (what to send
where, its state and its attempt record); this module does what is the same for both:

- **claim** (``claim_due``): the due rows (``pending`` or ``retrying``, ``next_attempt_at`` passed),
  oldest first, each taken by a conditional ``UPDATE`` that pushes ``next_attempt_at`` past a lease.
  Only one process sends a row; a process killed mid-delivery leaves it due again when the lease
  runs out, and another node sends it. Leases are read on the database's clock, not the node's.
- **record** (``record``): an attempt's outcome — ``sent``; ``failed`` when the answer is final or
  the attempts are spent; else ``retrying`` after an exponential backoff with a cap (``Policy``).
- **count** (``unsettled``): what still waits, for the metrics and the administrators' pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, update
from sqlmodel import Field, Session, SQLModel, col, select

from portail.db import database_clock, utcnow

DUE = ("pending", "retrying")


class DeliveryColumns(SQLModel):
    """The columns every delivery table has (the tables add what they carry: a ``sid``, a SET)."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=100, index=True)
    uri: str = Field(max_length=1000)
    status: str = Field(default="pending", max_length=12)  # pending | retrying | sent | failed
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime = Field(default_factory=utcnow)
    last_error: str = Field(default="", max_length=500)
    last_status_code: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    sent_at: dt.datetime | None = None


Row = TypeVar("Row", bound=DeliveryColumns)


@dataclass(frozen=True)
class Policy:
    """How a kind of delivery retries: ``first_backoff`` seconds, doubled after each failure up to
    ``max_backoff``; ``max_attempts`` in all; a claimed row is hidden from others for ``lease``."""

    first_backoff: float
    max_backoff: float
    max_attempts: int
    lease: dt.timedelta

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next attempt after ``attempts`` failures."""
        return dt.timedelta(seconds=min(self.first_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt; ``permanent``: the answer is final (no retry)."""

    ok: bool
    status_code: int | None = None
    error: str = ""
    permanent: bool = False


def claim_due(
    db: Session, model: type[Row], lease: dt.timedelta, limit: int, now: dt.datetime | None = None
) -> list[Row]:
    """Atomically take the due rows this process will send (the lease: ``next_attempt_at`` pushed on).

    ``now`` defaults to the database's clock (``db.database_clock``): a lease taken by one node is
    read by the others, and a node whose own clock is a minute ahead would otherwise see every lease
    of the others run out a minute early and send their deliveries a second time."""
    now = now or database_clock(db)
    table = model.__table__  # type: ignore[attr-defined]
    candidates = db.exec(
        select(col(model.id))
        .where(col(model.status).in_(DUE), col(model.next_attempt_at) <= now)
        .order_by(col(model.next_attempt_at))
        .limit(limit)
    ).all()
    claimed = []
    for row_id in candidates:
        result = db.execute(
            update(table)
            .where(table.c.id == row_id, table.c.status.in_(DUE), table.c.next_attempt_at <= now)
            .values(next_attempt_at=now + lease)
        )
        if getattr(result, "rowcount", 0) == 1:
            row = db.get(model, row_id)
            if row is not None:
                db.refresh(row)
                claimed.append(row)
    return claimed


def record(
    db: Session, model: type[Row], row_id: int, attempt: Attempt, policy: Policy, now: dt.datetime | None = None
) -> Row | None:
    """Store one attempt's outcome; the next attempt is scheduled from ``now`` (default: the
    database's clock, as for claims). ``None``: the row is gone."""
    row = db.get(model, row_id)
    if row is None:
        return None
    now = now or database_clock(db)
    row.attempts += 1
    row.last_status_code = attempt.status_code
    row.last_error = attempt.error[:500]
    if attempt.ok:
        row.status, row.sent_at = "sent", now
    elif attempt.permanent or row.attempts >= policy.max_attempts:
        row.status = "failed"
    else:
        row.status, row.next_attempt_at = "retrying", now + policy.backoff(row.attempts)
    db.add(row)
    return row


def unsettled(db: Session, model: type[DeliveryColumns]) -> int:
    """Deliveries still waiting to be sent or retried."""
    return int(db.exec(select(func.count()).select_from(model).where(col(model.status).in_(DUE))).one())
