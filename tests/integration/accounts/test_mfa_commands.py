"""``portail users mfa list`` shows factors without secrets; ``portail users mfa reset`` removes them
and records who was reset and why in the audit log."""

from __future__ import annotations

import argparse
import json

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.mfa import commands
from portail.accounts.mfa.models import RecoveryCode, TotpSecret
from portail.accounts.models import AuditEvent, Member
from portail.config import Settings
from tests.conftest import db_call, login
from tests.second_factor import enrol_totp


def test_reset_removes_every_factor_and_is_audited(
    client: TestClient, settings: Settings, member: Member, capsys: pytest.CaptureFixture[str]
) -> None:
    login(client)
    secret, _codes, _page = enrol_totp(client)
    assert commands.cmd_list(argparse.Namespace(email=member.email, json=True), settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["type"] for row in listed} == {"totp", "recovery-codes"} and secret not in json.dumps(listed)

    reason = "Téléphone perdu, identité vérifiée en personne"
    assert commands.cmd_reset(argparse.Namespace(email=member.email, reason=reason), settings) == 0

    def check(db: Session) -> tuple[int, int, list[AuditEvent]]:
        events = list(db.exec(select(AuditEvent).where(AuditEvent.action == "mfa.factors_reset")))
        return len(list(db.exec(select(TotpSecret)))), len(list(db.exec(select(RecoveryCode)))), events

    totps, codes, events = db_call(settings, check)
    assert (totps, codes) == (0, 0)
    [event] = events
    assert event.member_id == member.id and event.reason == reason and event.actor_id is None


def test_reset_needs_a_reason_and_an_existing_member(settings: Settings, member: Member) -> None:
    assert commands.cmd_reset(argparse.Namespace(email=member.email, reason="  "), settings) == 1
    assert commands.cmd_reset(argparse.Namespace(email="nobody@example.org", reason="x"), settings) == 1
