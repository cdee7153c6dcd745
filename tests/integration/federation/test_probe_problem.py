"""A node's health card summarizes the prober's raw error in plain words, in the reader's language; the
raw text (``ConnectError: …``, ``dns: …``) appears only to administrators, under "Détails techniques"."""

from __future__ import annotations

from sqlmodel import Session
from starlette.testclient import TestClient

from portail.accounts.models import Member
from portail.config import Settings
from portail.federation.models import HosterPerson, Instance
from tests.conftest import create_member, login
from tests.federation_factories import add_hoster, add_instance, in_db, member_id

RAW = "unreachable: ConnectError: [Errno 111] Connection refused"


def _down(settings: Settings, instance_id: int) -> None:
    def write(session: Session) -> None:
        row = session.get(Instance, instance_id)
        assert row is not None
        row.health, row.last_probe_error = "down", RAW
        session.add(row)

    in_db(settings, write)


def test_a_hoster_member_reads_a_summary_and_the_hoster_admin_the_details_too(
    client: TestClient, settings: Settings, member: Member
) -> None:
    hoster_id = add_hoster(settings, "coop", admin_email="alice@example.org")
    _down(settings, add_instance(settings, "nuage", hoster="coop", software="nextcloud"))
    create_member(settings, "bob@example.org", "Bob")
    in_db(
        settings,
        lambda s: s.add(
            HosterPerson(hoster_id=hoster_id, member_id=member_id(s, "bob@example.org"), role="hoster-member")
        ),
    )

    login(client, "bob@example.org")
    page = client.get("/federation/instances/nuage").text
    assert "L’instance ne répond pas : la connexion a échoué." in page
    assert "ConnectError" not in page and "Errno" not in page and "Détails techniques" not in page
    client.cookies.clear()

    login(client)  # Alice, the hoster's administrator
    page = client.get("/federation/instances/nuage").text
    assert "Détails techniques" in page and RAW in page


def test_the_summary_speaks_english_to_an_english_reader(
    client: TestClient, settings: Settings, member: Member
) -> None:
    add_hoster(settings, "coop", admin_email="alice@example.org")
    _down(settings, add_instance(settings, "nuage", hoster="coop", software="nextcloud"))
    in_db(settings, lambda s: s.add(_english(s.get(Member, member.id))))
    login(client)
    page = client.get("/federation/instances/nuage").text
    assert "The instance does not answer: the connection failed." in page and "Technical details" in page


def _english(row: Member | None) -> Member:
    assert row is not None
    row.locale = "en"
    return row
