"""Fixtures of the notification tests: instances, members and the fake servers they talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portail import db as database
from portail.accounts import members
from portail.accounts.models import Member
from portail.config import Settings
from portail.federation.models import Instance
from tests.fakes.instances import Instances
from tests.fakes.server import serve


def add_instance(db: database.Database, slug: str, software: str, base_url: str, **fields: object) -> Instance:
    with db.session() as session:
        instance = Instance(slug=slug, name=slug.capitalize(), software=software, base_url=base_url, status="active")
        for key, value in fields.items():
            setattr(instance, key, value)
        session.add(instance)
        session.flush()
        return instance


def add_member(db: database.Database, email: str = "alice@example.org") -> Member:
    with db.session() as session:
        return members.create_member(session, email=email, name="Alice", password_hash="x", verified=True)


@pytest.fixture
def fast_settings(unit_settings: Settings) -> Settings:
    return unit_settings.replace(
        outbound_timeout_seconds=2.0,
        notification_breaker_failures=2,
        notification_breaker_reset_seconds=60,
        outbound_max_bytes=200_000,
    )


@pytest.fixture
def fast_db(fast_settings: Settings) -> Iterator[database.Database]:
    handle = database.Database(fast_settings)
    yield handle
    handle.dispose()


@pytest.fixture(scope="module")
def instances() -> Iterator[Instances]:
    fake = Instances()
    with serve(fake.app()) as base_url:
        fake.base_url = base_url
        yield fake
