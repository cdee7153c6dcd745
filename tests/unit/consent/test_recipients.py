"""Which tools are told about a purge, and where: instance endpoint first, else client metadata."""

from __future__ import annotations

import pytest
from sqlmodel import select

from portail.config import Settings
from portail.consent import purge
from portail.db import Database
from portail.federation.models import Instance
from portail.oidc.client_metadata import MetadataError, spec_from_metadata
from portail.oidc.models import OAuthClient
from tests.unit.consent.population import populate


def test_every_client_that_knew_the_member_is_found(db: Database) -> None:
    with db.session() as session:
        people = populate(session)
        session.add(OAuthClient(client_id="jamais", name="Jamais utilisé", redirect_uris=[]))
        session.flush()
        assert [c.client_id for c in purge.known_clients(session, people.member_id)] == ["nuage"]
        assert purge.known_clients(session, people.other_id) == []


def test_the_instance_endpoint_wins_over_the_client_metadata(db: Database) -> None:
    with db.session() as session:
        populate(session)
        client = session.get(OAuthClient, 1)
        assert client is not None
        client.extra_metadata = {"account_events_uri": "https://client.example/events"}
        assert purge.events_endpoint(session, client) == "https://nuage.example/events"
        instance = session.exec(select(Instance)).one()
        instance.account_events_uri = None
        session.add(instance)
        session.flush()
        assert purge.events_endpoint(session, client) == "https://client.example/events"
        client.extra_metadata = {}
        assert purge.events_endpoint(session, client) is None


def test_dynamic_registration_keeps_the_account_events_uri(unit_settings: Settings) -> None:
    metadata = {
        "redirect_uris": ["https://tool.example/cb"],
        "account_events_uri": "https://tool.example/account-events",
    }
    _spec, extra = spec_from_metadata(metadata, unit_settings)
    assert extra["account_events_uri"] == "https://tool.example/account-events"
    with pytest.raises(MetadataError):
        spec_from_metadata({**metadata, "account_events_uri": "ftp://tool.example/x"}, unit_settings)
