"""A mail that cannot be sent never undoes what it reports."""

from __future__ import annotations

from sqlmodel import select

from portail.accounts import members
from portail.config import Settings
from portail.consent import deletion
from portail.consent.models import DeletionRequest
from portail.db import Database


def test_a_deletion_request_is_recorded_even_when_the_mail_server_is_down(
    db: Database, unit_settings: Settings
) -> None:
    broken = unit_settings.replace(smtp_url="smtp://127.0.0.1:9")  # nothing listens there
    with db.session() as session:
        member = members.create_member(session, email="a@example.org", name="Ana", password_hash="x")
        deletion.request_deletion(session, broken, member.id or 0)
    with db.session() as session:
        assert len(session.exec(select(DeletionRequest)).all()) == 1
        assert deletion.cancel(session, broken, member.id or 0, "login")
