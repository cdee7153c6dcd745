"""Does the portal's home page slow down as the federation grows? A program, not a test.

Builds a SQLite database (WAL) with a member who belongs to 3 organizations and lives in a territory,
then grows the federation around her (organizations elsewhere in her region and in other regions,
each with an active instance) and, at each size, times the home page's data (tiles + discover +
notifications: the one domain call of ``GET /``) and the menu's data (``/widget/menu.json``),
reporting the median and p95 per call and the number of SQL statements.

    .venv/bin/python bench/portal.py                 # sizes 10, 1000, 10000 instances
    .venv/bin/python bench/portal.py --sizes 10 50000 --runs 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portail import db as database  # noqa: E402
from portail.accounts import members  # noqa: E402
from portail.accounts.models import Member, Membership, Organization  # noqa: E402
from portail.dashboard import notification_summary, tiles  # noqa: E402
from portail.dashboard.discover import discover  # noqa: E402
from portail.federation.models import Instance  # noqa: E402


def home(s: Session, member: Member) -> int:
    circles = tiles.circles_of(s, member)
    mine = tiles.tiles_for(s, member, circles)
    discover(s, member, circles, {t.instance_id for t in mine})
    notification_summary.summary(s, member.id or 0)
    return len(mine)


def menu(s: Session, member: Member) -> int:
    mine = tiles.tiles_for(s, member)
    notification_summary.summary(s, member.id or 0)
    return len(mine)


def grow(engine: Any, start: int, stop: int) -> None:
    with Session(engine) as s:
        for n in range(start, stop):
            region = "05" if n % 17 == 0 else "13"  # one in 17 near the member
            org = Organization(slug=f"org-{n}", name=f"Organisme {n}", region=region)
            s.add(org)
            s.flush()
            s.add(
                Instance(
                    slug=f"inst-{n}",
                    name=f"Instance {n}",
                    software="nextcloud",
                    scope="organization",
                    base_url=f"https://inst-{n}.example",
                    organization_id=org.id,
                    status="active" if n % 10 else "suspended",
                )
            )
        s.commit()


def measure(engine: Any, member_id: int, fn: Any, runs: int) -> tuple[float, float, int, int]:
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    samples = []
    shown = 0
    for i in range(runs):
        with Session(engine) as s:
            member = s.get(Member, member_id)
            assert member is not None
            if i == 0:
                event.listen(engine, "before_cursor_execute", count)
            started = time.perf_counter()
            shown = fn(s, member)
            samples.append((time.perf_counter() - started) * 1000)
            if i == 0:
                event.remove(engine, "before_cursor_execute", count)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], statements, shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="portail-bench-portal-"))
    engine = database.make_engine(f"sqlite:///{folder / 'portal.db'}")
    database.upgrade(engine)
    with Session(engine) as s:
        alice = members.create_member(s, email="alice@example.org", name="Alice", password_hash="x", verified=True)
        mrc = Organization(slug="mrc", name="MRC", kind="territory", region="05")
        s.add(mrc)
        s.flush()
        alice.territory_id = mrc.id
        for n in range(3):
            org = Organization(slug=f"mine-{n}", name=f"Mon organisme {n}", region="05")
            s.add(org)
            s.flush()
            s.add(Membership(organization_id=org.id or 0, member_id=alice.id or 0))
            s.add(Instance(slug=f"mine-{n}", name=f"Mon outil {n}", software="matrix", scope="organization",
                           base_url=f"https://mine-{n}.example", organization_id=org.id, status="active"))  # fmt: skip
        for n in range(4):
            s.add(Instance(slug=f"central-{n}", name=f"Central {n}", software="praxis", scope="central",
                           base_url=f"https://central-{n}.example", status="active"))  # fmt: skip
        s.commit()
        member_id = alice.id or 0
    print(f"{'instances':>10} {'page':>6} {'median ms':>10} {'p95 ms':>8} {'SQL':>4} {'tiles':>6}")
    size = 7
    for target in args.sizes:
        grow(engine, size, target)
        size = max(size, target)
        for name, fn in (("home", home), ("menu", menu)):
            median, p95, statements, shown = measure(engine, member_id, fn, args.runs)
            print(f"{target:>10} {name:>6} {median:>10.2f} {p95:>8.2f} {statements:>4} {shown:>6}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
