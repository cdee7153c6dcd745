"""The home page reads only what this member can see, through indexes (portal issue: "does not get
slower with the number of instances in the federation")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from portail.accounts.models import Member
from portail.dashboard import tiles
from portail.dashboard.discover import discover
from portail.db import Database
from tests import seed
from tests.unit.dashboard.test_tiles import _world

TABLES = "member|membership|organization|instance|instance_link|hoster|tile_preference"
FULL_SCAN = re.compile(rf"^SCAN ({TABLES})\b")


@contextmanager
def recorded(db: Database) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)


def _home(s: Session, member: Member) -> tuple[list[tiles.Tile], Any]:
    circles = tiles.circles_of(s, member)
    mine = tiles.tiles_for(s, member, circles)
    return mine, discover(s, member, circles, {t.instance_id for t in mine})


def _crowd(s: Session, count: int) -> None:
    """A federation of ``count`` organizations elsewhere, each with an active instance."""
    for n in range(count):
        org = seed.organization(s, f"ailleurs-{n}", f"Ailleurs {n}", region="13")
        seed.instance(s, f"ailleurs-{n}", f"Ailleurs {n}", scope="organization", organization_id=org.id)


def test_home_queries_search_indexes_and_never_scan_a_table(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
        _crowd(s, 50)
    with db.session() as s, recorded(db) as statements:
        member = s.get(Member, alice.id)
        assert member is not None
        _home(s, member)
    with db.session() as s:
        plans = [
            str(row[-1])
            for statement, parameters in statements
            for row in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        ]
    assert plans, "no statement recorded"
    assert [line for line in plans if FULL_SCAN.match(line)] == []
    assert any("ix_instance_scope" in line for line in plans)
    assert any("ix_organization_region" in line for line in plans)


def test_home_costs_the_same_statements_in_a_small_and_a_big_federation(db: Database) -> None:
    with db.session() as s:
        alice = _world(s)
    with db.session() as s, recorded(db) as small:
        before = _home(s, s.get(Member, alice.id))  # type: ignore[arg-type]
    with db.session() as s:
        _crowd(s, 400)
    with db.session() as s, recorded(db) as big:
        after = _home(s, s.get(Member, alice.id))  # type: ignore[arg-type]
    assert [statement for statement, _ in big] == [statement for statement, _ in small]
    assert [t.slug for t in after[0]] == [t.slug for t in before[0]]
    assert [i.name for i in after[1].instances] == [i.name for i in before[1].instances]
