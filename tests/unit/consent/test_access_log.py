"""Who accessed my data: per tool, per day, with the last token and userinfo times."""

from __future__ import annotations

import datetime as dt

from portail.consent import access_log
from portail.db import Database, utcnow
from portail.oidc.models import DataAccess
from tests.unit.consent.population import populate


def test_the_log_lists_each_access_with_the_tool_name(db: Database) -> None:
    with db.session() as session:
        people = populate(session)
        entries = access_log.entries(session, people.member_id)
    assert {(e.tool, e.kind, e.count) for e in entries} == {
        ("Nuage En commun", "token", 3),
        ("Nuage En commun", "userinfo", 1),
    }


def test_last_access_sums_the_days_and_keeps_the_latest_time(db: Database) -> None:
    with db.session() as session:
        people = populate(session)
        yesterday = utcnow() - dt.timedelta(days=1)
        session.add(
            DataAccess(
                member_id=people.member_id,
                client_id="nuage",
                kind="token",
                day=yesterday.date(),
                count=5,
                first_at=yesterday,
                last_at=yesterday,
            )
        )
        session.flush()
        summary = access_log.last_access(session, people.member_id)["nuage"]
    assert summary.tokens == 8 and summary.userinfo_calls == 1
    assert summary.last_token_at is not None and summary.last_token_at.tzinfo is not None
    assert summary.last_token_at > yesterday
