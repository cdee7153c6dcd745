"""The "discover" section: instances and organizations of the member's region they do not have yet."""

from __future__ import annotations

from portail.dashboard import tiles
from portail.dashboard.discover import discover
from portail.db import Database
from tests import seed
from tests.unit.dashboard.test_tiles import _member, _world


def test_discover_suggests_region_instances_and_organizations_the_member_lacks(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        far = seed.organization(s, "loin", "Organisme lointain", region="13")
        seed.instance(s, "loin-nc", "Nuage lointain", scope="organization", organization_id=far.id)
        near = seed.organization(s, "voisin", "Voisins d’Estrie", region="05")
        seed.instance(s, "voisin-off", "Retiré", scope="organization", organization_id=near.id, status="retired")
        circles = tiles.circles_of(s, alice)
        seen = {t.instance_id for t in tiles.tiles_for(s, alice, circles)}
        found = discover(s, alice, circles, seen)
    assert found.region == "05"
    assert found.region_name == "Estrie"
    assert [(i.name, i.organization.slug, i.status) for i in found.instances] == [
        ("Lien en attente", "autre", "requested"),
        ("Nuage d’Autre Org", "autre", "requested"),
    ]
    assert [(j.organization.slug, j.status) for j in found.organizations] == [
        ("autre", "requested"),
        ("voisin", ""),
    ]


def test_discover_is_empty_without_a_territory(db: Database) -> None:
    with db.session() as s:
        _world(s)
        bob = _member(s, "bob@example.org")
        circles = tiles.circles_of(s, bob)
        found = discover(s, bob, circles, set())
    assert found.region is None
    assert found.instances == [] and found.organizations == []
