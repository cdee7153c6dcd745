"""Who an instance serves: the ``groups`` claim an instance receives (only the organizations
relevant to it; all of them for a central instance) and the instances a member sees."""

from __future__ import annotations

from sqlmodel import select

from portail.accounts.extensions import AccountExtensions
from portail.accounts.models import Member, Organization
from portail.config import Settings
from portail.db import Database
from portail.federation import audience, startup
from portail.federation.models import Instance, InstanceLink
from portail.oidc import backchannel, claims
from portail.oidc.extensions import ProviderExtensions
from portail.oidc.models import OAuthClient
from tests.conftest import create_member
from tests.federation_factories import (
    add_hoster,
    add_instance,
    add_membership,
    add_organization,
    in_db,
    set_territory,
)


def _world(settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    add_organization(settings, "tiess", "TIESS")
    add_organization(settings, "cdc", "CDC Magog")
    add_organization(settings, "chantier", "Chantier")
    add_organization(settings, "mrc-memphremagog", "MRC de Memphrémagog", kind="territory", region="05")
    add_membership(settings, "tiess", "alice@example.org")
    add_membership(settings, "cdc", "alice@example.org")
    set_territory(settings, "alice@example.org", "mrc-memphremagog")
    add_hoster(settings, "koumbit")
    add_instance(settings, "central-chat", client_id="central-chat")
    add_instance(
        settings, "nuage-tiess", scope="organization", organization="tiess", hoster="koumbit", client_id="nuage-tiess"
    )
    add_instance(
        settings,
        "nuage-chantier",
        scope="organization",
        organization="chantier",
        hoster="koumbit",
        client_id="nuage-chantier",
    )
    add_instance(
        settings,
        "nuage-mrc",
        scope="territorial",
        organization="mrc-memphremagog",
        hoster="koumbit",
        client_id="nuage-mrc",
    )
    add_instance(settings, "old-tiess", scope="organization", organization="tiess", status="suspended")


def _groups(settings: Settings, client_id: str) -> list[str]:
    def compute(session):  # type: ignore[no-untyped-def]
        member = session.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
        return audience.groups_for(session, member, client_id)

    return in_db(settings, compute)


def test_an_instance_receives_only_the_organizations_it_serves(unit_settings: Settings) -> None:
    _world(unit_settings)
    assert _groups(unit_settings, "nuage-tiess") == ["tiess"]
    assert _groups(unit_settings, "nuage-mrc") == ["mrc-memphremagog"]
    assert _groups(unit_settings, "nuage-chantier") == []


def test_a_central_instance_or_a_plain_client_receives_every_organization(unit_settings: Settings) -> None:
    _world(unit_settings)
    expected = ["cdc", "mrc-memphremagog", "tiess"]
    assert _groups(unit_settings, "central-chat") == expected
    assert _groups(unit_settings, "some-cli-client") == expected


def test_an_active_link_adds_the_linked_organization_to_the_claim(unit_settings: Settings) -> None:
    _world(unit_settings)

    def link(session, status):  # type: ignore[no-untyped-def]
        instance = session.exec(select(Instance).where(Instance.slug == "nuage-chantier")).one()
        org = session.exec(select(Organization).where(Organization.slug == "cdc")).one()
        session.add(InstanceLink(instance_id=instance.id, organization_id=org.id, status=status))

    in_db(unit_settings, lambda s: link(s, "requested"))
    assert _groups(unit_settings, "nuage-chantier") == []
    in_db(unit_settings, lambda s: s.exec(select(InstanceLink)).one().__setattr__("status", "active"))
    assert _groups(unit_settings, "nuage-chantier") == ["cdc"]


def test_members_see_central_instances_and_those_of_their_organizations(unit_settings: Settings) -> None:
    _world(unit_settings)

    def visible(session):  # type: ignore[no-untyped-def]
        member = session.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
        return [i.slug for i in audience.visible_instances(session, member)]

    assert in_db(unit_settings, visible) == ["central-chat", "nuage-mrc", "nuage-tiess"]


def test_the_provider_uses_the_federation_groups_provider(db: Database, unit_settings: Settings) -> None:
    """``portail.oidc.claims`` computes ``groups`` through the provider registered by ``create_app``."""
    _world(unit_settings)
    extensions = AccountExtensions.attached_to(db)
    provider = ProviderExtensions().attach(db)
    startup.register_hooks(extensions, provider, backchannel.install(db, extensions, unit_settings))

    def released(session):  # type: ignore[no-untyped-def]
        member = session.exec(select(Member).where(Member.email_key == "alice@example.org")).one()
        return claims.profile_values(session, member, OAuthClient(client_id="nuage-tiess", name="x"), ["groups"])

    assert db.call(released) == {"groups": ["tiess"]}
    assert "federation:write" in provider.api_scopes
