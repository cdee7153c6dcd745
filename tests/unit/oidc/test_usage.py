"""The access log counts per day as members live it (Portail's time zone), not per UTC day."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from portail import db as database
from portail.config import Settings
from portail.oidc import usage
from portail.oidc.models import DataAccess, OAuthClient
from tests.conftest import create_member


def test_an_evening_access_in_quebec_counts_on_that_local_day(
    db: database.Database, unit_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = create_member(unit_settings)
    with db.session() as session:
        session.add(OAuthClient(client_id="outil", name="Outil", redirect_uris=[]))
    evening = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)  # 22:00 on Nov 21 in Montréal
    monkeypatch.setattr(usage, "utcnow", lambda: evening)
    with db.session() as session:
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
        usage.count_access(session, unit_settings, member.id or 0, "outil", "userinfo", "openid")
    with db.session() as session:
        row = session.exec(select(DataAccess)).one()
    assert (row.day, row.count) == (dt.date(2026, 11, 21), 2)
