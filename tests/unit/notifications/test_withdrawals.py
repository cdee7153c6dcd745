"""Members told that a tool they use was suspended or retired: who is told (an active consent or a
grant for its client; not a member who withdrew their consent or never used it), in which language,
and that a repeated decision tells them again without failing."""

from __future__ import annotations

from sqlmodel import select

from portail import db as database
from portail.config import Settings
from portail.notifications import withdrawals
from portail.notifications.models import Notification
from portail.oidc.models import Consent, Grant
from tests.conftest import create_member
from tests.unit.notifications.conftest import add_instance


def test_each_member_who_used_the_tool_is_told_in_their_language(
    db: database.Database, unit_settings: Settings
) -> None:
    instance = add_instance(db, "passerelles", "passerelles", "https://passerelles.example", client_id="passerelles")
    lea = create_member(unit_settings, "lea@example.org", "Léa")
    sam = create_member(unit_settings, "sam@example.org", "Sam", locale="en")
    gone = create_member(unit_settings, "gone@example.org", "Parti")
    create_member(unit_settings, "never@example.org", "Jamais")
    with db.session() as s:
        s.add(Consent(member_id=lea.id or 0, client_id="passerelles", scopes="openid", policy_version="1"))
        s.add(Grant(member_id=sam.id, client_id="passerelles", scope="openid"))
        s.add(Grant(member_id=None, client_id="passerelles", scope="notifications:push"))  # the tool itself
        s.add(
            Consent(
                member_id=gone.id or 0,
                client_id="passerelles",
                scopes="openid",
                policy_version="1",
                withdrawn_at=database.utcnow(),
            )
        )
    with db.session() as s:
        assert withdrawals.tell_members(s, unit_settings, instance, "suspend", "raison interne") == 2
    with db.session() as s:
        rows = {n.member_id: n for n in s.exec(select(Notification))}
        again = withdrawals.tell_members(s, unit_settings, instance, "retire", "fermeture")
    assert set(rows) == {lea.id, sam.id}
    assert rows[lea.id].title == "Passerelles est suspendu" and rows[lea.id].kind == "instance-suspended"
    assert rows[sam.id].title == "Passerelles is suspended" and "logged out" in rows[sam.id].body
    assert all("raison" not in n.body for n in rows.values())
    assert again == 2
