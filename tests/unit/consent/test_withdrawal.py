"""Withdrawing a consent: tokens revoked, codes spent, back-channel logout queued, ledger written; races."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from portail.consent import withdrawal
from portail.consent.errors import ConsentError
from portail.db import Database
from portail.oidc.models import AuthorizationCode, BackchannelDelivery, ConsentEvent, Grant, OAuthClient, RefreshToken
from tests.unit.consent.population import populate


def _with_backchannel(db: Database) -> int:
    with db.session() as session:
        people = populate(session)
        client = session.exec(select(OAuthClient)).one()
        client.backchannel_logout_uri = "https://nuage.example/backchannel"
        session.add(client)
        return people.member_id


def test_withdrawal_revokes_spends_and_logs_the_tool_out(db: Database) -> None:
    member_id = _with_backchannel(db)
    with db.session() as session:
        done = withdrawal.withdraw(session, member_id, "nuage")
    assert (done.tool, done.grants_revoked, done.logouts_sent) == ("Nuage En commun", 1, 1)
    with db.session() as session:
        assert all(g.revoked_at is not None for g in session.exec(select(Grant)))
        assert all(t.revoked_at is not None for t in session.exec(select(RefreshToken)))
        assert all(c.used_at is not None for c in session.exec(select(AuthorizationCode)))
        [delivery] = session.exec(select(BackchannelDelivery)).all()
        assert delivery.client_id == "nuage" and delivery.status == "pending"
        last = session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")).one()
        assert last.member_id == member_id and last.scopes == "openid profile email"


def test_a_tool_never_consented_to_cannot_be_withdrawn(db: Database) -> None:
    member_id = _with_backchannel(db)
    with db.session() as session, pytest.raises(ConsentError) as caught:
        withdrawal.withdraw(session, member_id, "autre-outil")
    assert caught.value.status == 404
    with db.session() as session:
        assert session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")).all() == []


def test_two_withdrawals_at_once_write_one_event(db: Database) -> None:
    member_id = _with_backchannel(db)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def attempt() -> None:
        start.wait()
        try:
            db.call(withdrawal.withdraw, member_id, "nuage")
            outcomes.append("withdrawn")
        except ConsentError as exc:
            outcomes.append(str(exc.status))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["409", "withdrawn"]
    with db.session() as session:
        assert len(session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")).all()) == 1
