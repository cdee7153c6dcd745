"""Which tiles a member sees (portal issue: "exactly their tools"), their login URLs, order and search."""

from __future__ import annotations

from sqlmodel import Session

from portail.accounts import members
from portail.accounts.models import Member
from portail.dashboard import tiles
from portail.db import Database
from tests import seed


def _member(db: Session, email: str = "alice@example.org") -> Member:
    return members.create_member(db, email=email, name="Alice Tremblay", password_hash="x", verified=True)


def _world(db: Session) -> Member:
    """Alice: member of Centre Solidaire, requested Autre Org, lives in MRC de Memphrémagog."""
    alice = _member(db)
    hoster = seed.hoster(db, "coop-nuage", "Coop Nuage")
    centre = seed.organization(db, "centre", "Centre Solidaire", region="05")
    other = seed.organization(db, "autre", "Autre Org", region="05")
    mrc = seed.territory(db, "memphremagog", "MRC de Memphrémagog", "05")
    seed.territory(db, "laval", "Laval", "13")
    seed.membership(db, centre.id, alice.id)
    seed.membership(db, other.id, alice.id, status="requested")
    seed.live_in(db, alice.id, mrc.id)
    seed.instance(db, "nuage", "Nuage central", software="nextcloud")
    seed.instance(db, "clavardage", "Clavardage", software="matrix", hoster_id=hoster.id)
    seed.instance(db, "vieux", "Ancien central", status="retired")
    seed.instance(db, "centre-nc", "Nuage du Centre", scope="organization", organization_id=centre.id)
    seed.instance(
        db, "centre-off", "Suspendu du Centre", scope="organization", organization_id=centre.id, status="suspended"
    )
    seed.instance(db, "autre-nc", "Nuage d’Autre Org", scope="organization", organization_id=other.id)
    seed.instance(db, "mrc-forum", "Forum de la MRC", software="discourse", scope="territorial", organization_id=mrc.id)
    shared = seed.instance(
        db, "partage", "Passerelles partagé", software="passerelles", scope="organization", organization_id=other.id
    )
    seed.link(db, shared.id, centre.id)
    pending = seed.instance(db, "en-attente", "Lien en attente", scope="organization", organization_id=other.id)
    seed.link(db, pending.id, centre.id, status="requested")
    db.flush()
    return alice


def test_member_sees_central_organization_linked_and_territory_instances_only(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        found = {t.slug: t for t in tiles.tiles_for(s, alice)}
    assert set(found) == {"nuage", "clavardage", "centre-nc", "mrc-forum", "partage"}
    assert found["nuage"].reason == "central"
    assert found["centre-nc"].reason == "organization"
    assert found["centre-nc"].served_by == "Centre Solidaire"
    assert found["partage"].served_by == "Centre Solidaire"
    assert found["mrc-forum"].reason == "territory"
    assert found["mrc-forum"].served_by == "MRC de Memphrémagog"
    assert found["clavardage"].hoster == "Coop Nuage"


def test_a_member_without_organizations_or_territory_sees_central_instances(db: Database) -> None:
    with db.session() as s:
        _world(s)
        bob = _member(s, "bob@example.org")
        found = [t.slug for t in tiles.tiles_for(s, bob)]
    assert sorted(found) == ["clavardage", "nuage"]


def test_open_url_starts_each_tool_own_login(db: Database) -> None:
    with db.session() as s:
        nc = seed.instance(
            s, "nc1", "NC", software="nextcloud", base_url="https://nc.example/", provider_identifier="encommun"
        )
        nc_numeric = seed.instance(
            s, "nc2", "NC2", software="nextcloud", base_url="https://nc2.example", extra={"user_oidc_provider_id": 3}
        )
        forum = seed.instance(s, "forum", "Forum", software="discourse", base_url="https://forum.example")
        chat = seed.instance(s, "chat", "Chat", software="matrix", base_url="https://matrix.example")
        custom = seed.instance(
            s,
            "custom",
            "Custom",
            software="matrix",
            base_url="https://m.example",
            login_url="https://element.example/#/login",
        )
    assert tiles.open_url(nc) == "https://nc.example/"
    assert tiles.open_url(nc_numeric) == "https://nc2.example/index.php/apps/user_oidc/login/3"
    assert tiles.open_url(forum) == "https://forum.example/auth/oidc"
    assert tiles.open_url(chat) == "https://matrix.example"
    assert tiles.open_url(custom) == "https://element.example/#/login"


def test_pinned_tiles_come_first_and_moves_stay_within_their_group(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        names = [t.slug for t in tiles.tiles_for(s, alice)]
        assert names == ["clavardage", "mrc-forum", "nuage", "centre-nc", "partage"]  # by name
        assert tiles.arrange(s, alice, "partage", "pin") is not None
        assert tiles.arrange(s, alice, "nuage", "pin") is not None
        assert [t.slug for t in tiles.tiles_for(s, alice)][:2] == ["partage", "nuage"]
        tiles.arrange(s, alice, "nuage", "up")
        tiles.arrange(s, alice, "nuage", "up")  # already first: nothing moves
        tiles.arrange(s, alice, "clavardage", "up")  # first unpinned cannot jump into the pinned group
        tiles.arrange(s, alice, "clavardage", "down")
        order = [(t.slug, t.pinned) for t in tiles.tiles_for(s, alice)]
    assert order == [
        ("nuage", True),
        ("partage", True),
        ("mrc-forum", False),
        ("clavardage", False),
        ("centre-nc", False),
    ]


def test_unpinning_puts_the_tile_first_among_the_others(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        tiles.arrange(s, alice, "partage", "pin")
        tiles.arrange(s, alice, "partage", "unpin")
        first = tiles.tiles_for(s, alice)[0]
    assert (first.slug, first.pinned) == ("partage", False)


def test_arranging_an_instance_the_member_cannot_see_is_refused(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        assert tiles.arrange(s, alice, "autre-nc", "pin") is None
        assert tiles.arrange(s, alice, "nuage", "explode") is None
        assert tiles.arrange(s, alice, "no-such-thing", "pin") is None


def test_search_matches_every_word_ignoring_case_and_accents(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        mine = tiles.tiles_for(s, alice)
    assert [t.slug for t in tiles.search(mine, "MEMPHREMAGOG")] == ["mrc-forum"]
    assert [t.slug for t in tiles.search(mine, "nuage centre")] == ["centre-nc"]
    assert [t.slug for t in tiles.search(mine, "coop")] == ["clavardage"]
    assert tiles.search(mine, "   ") == mine
    assert tiles.search(mine, "introuvable") == []


def test_search_knows_the_software_s_other_names_and_the_host_name(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        mine = tiles.tiles_for(s, alice)
    # Matrix is also Synapse (the server) and Element (the app); Nextcloud is where the files are.
    assert [t.slug for t in tiles.search(mine, "synapse")] == ["clavardage"]
    assert [t.slug for t in tiles.search(mine, "Élément")] == ["clavardage"]
    assert {t.slug for t in tiles.search(mine, "fichiers")} == {t.slug for t in mine if t.software == "nextcloud"}
    # The host name is matched too (https://nuage.encommun.example): no tile's name says "nuage.encommun".
    assert [t.slug for t in tiles.search(mine, "nuage.encommun")] == ["nuage"]
