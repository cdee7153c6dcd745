"""Fixtures of the notification hub's HTTP tests: an instance with its OIDC client, access tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.federation.models import Instance
from portail.oidc import keys, subjects, tokens
from portail.oidc.models import OAuthClient


@dataclass
class Pusher:
    instance: Instance
    client: OAuthClient
    settings: Settings = field(repr=False)
    ring: keys.KeyRing = field(repr=False)  # the application's signing keys

    def token(self, scope: str = "notifications:push") -> str:
        return tokens.issue_access_token(
            self.ring, self.settings, self.client, sub=self.client.client_id, scope=scope
        ).token


def make_pusher(app: Starlette, slug: str = "passerelles", base_url: str = "https://passerelles.example") -> Pusher:
    db: Database = app.state.db
    with db.session() as session:
        client = OAuthClient(
            client_id=f"{slug}-client",
            name=slug,
            grant_types=["client_credentials"],
            scope="notifications:push",
            subject_type="pairwise",
            sector_identifier=base_url.split("//")[1],
        )
        instance = Instance(
            slug=slug,
            name=slug.capitalize(),
            software="passerelles",
            base_url=base_url,
            status="active",
            client_id=client.client_id,
        )
        session.add(client)
        session.add(instance)
        session.flush()
        return Pusher(instance, client, app.state.settings, app.state.keys)


def sub_of(app: Starlette, member: Member, pusher: Pusher) -> str:
    db: Database = app.state.db
    with db.session() as session:
        return subjects.subject_for(session, app.state.settings.secret_key, member, pusher.client)


@pytest.fixture
def pusher(app: Starlette) -> Pusher:
    return make_pusher(app)
