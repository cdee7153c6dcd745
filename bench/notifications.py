"""Notification hub benchmark.

1. Inbox refresh: 50 simulated instances (feeds served by one local uvicorn app) answering in 20–200 ms,
   2 of which hang. A member subscribed to all of them refreshes their inbox with the default budget.
   Reported: the cold refresh (breakers closed: the hanging ones hold it to the budget) and warm
   refreshes once the breakers of the hanging instances are open, as a ratio to the slowest healthy
   instance's latency (target ≤ 1.2).
2. Inbox page (cache-first): the same 50 instances; a logged-in member opens ``/notifications`` again
   and again (the application in-process, Starlette's test client). The page is drawn from stored
   notifications and only *starts* a background refresh, so its p50 does not depend on the
   instances' latency nor on the hanging ones (target p50 ≤ 50 ms).
3. Scale: 10,000 vs 1,000,000 members in PostgreSQL: a scheduler pass and a digest batch (200
   members each), time and memory, and the purge per chunk of 5,000 rows; ratios (goal ≤ 1.2).
4. Push API throughput: ``portail serve --workers 2`` on PostgreSQL; closed-loop clients POST batches of
   100 notifications with a ``notifications:push`` access token; reported: notifications accepted per
   second (target ≥ 2,000).

Usage: ``.venv/bin/python bench/notifications.py [--only refresh|inbox|scale|push] [--seconds 10] [--clients 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import multiprocessing.queues
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portail import db as database  # noqa: E402
from portail.accounts import members  # noqa: E402
from portail.config import Settings, load_settings  # noqa: E402
from portail.db import utcnow  # noqa: E402
from portail.federation.models import Instance  # noqa: E402
from portail.federation.verification import PinnedTransport  # noqa: E402
from portail.notifications import inbox  # noqa: E402
from portail.notifications.aggregator import Aggregator  # noqa: E402
from portail.oidc import keys, subjects, tokens  # noqa: E402
from portail.oidc.models import OAuthClient  # noqa: E402
from tests.fakes.instances import Instances  # noqa: E402
from tests.fakes.server import free_port  # noqa: E402

PG_ADMIN = os.environ.get("PORTAIL_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _serve_instances(fake: Instances, count: int, ports: multiprocessing.queues.SimpleQueue[list[int]]) -> None:
    """The simulated instances, in a process of their own (not competing for this one's GIL).

    Each instance listens on its own port, so that each is its own origin as real instances are (the
    outbound transport pools connections per host, as it would for instances on different hosts)."""
    import socket

    import uvicorn

    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sockets.append(sock)
    ports.put([sock.getsockname()[1] for sock in sockets])
    config = uvicorn.Config(fake.app(), log_level="critical", lifespan="off", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=sockets)


class Fleet:
    """50 simulated instances in a process of their own: 20-200 ms (seeded), 2 of them hang."""

    def __init__(self) -> None:
        rng = random.Random(25)
        self.fake = Instances()
        self.names = [f"i{n:02d}" for n in range(50)]
        self.hanging = {self.names[7], self.names[31]}
        for name in self.names:
            self.fake.latency[name] = rng.uniform(0.020, 0.200)
            if name in self.hanging:
                self.fake.modes[name] = "hang"
        self.slowest = max(v for k, v in self.fake.latency.items() if k not in self.hanging)
        context = multiprocessing.get_context("fork")
        queue: multiprocessing.queues.SimpleQueue[list[int]] = context.SimpleQueue()
        self.process = context.Process(target=_serve_instances, args=(self.fake, len(self.names), queue), daemon=True)
        self.process.start()
        ports = queue.get()
        self.origins = {name: f"http://127.0.0.1:{port}" for name, port in zip(self.names, ports, strict=True)}
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.origins[self.names[0]]}/i/{self.names[0]}/feed", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("instances server did not start") from None
                time.sleep(0.1)

    def subscribe(self, db: database.Database, member_id: int) -> None:
        with db.session() as session:
            for name in self.names:
                instance = Instance(
                    slug=name,
                    name=name,
                    software="praxis",
                    base_url=f"{self.origins[name]}/i/{name}",
                    feed_url=f"{self.origins[name]}/i/{name}/feed",
                    status="active",
                )
                session.add(instance)
                session.flush()
                inbox.set_preference(session, member_id, instance.id or 0, enabled=True, digest="none")

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)


def _sqlite_settings(tmp: str, **overrides: object) -> Settings:
    settings = load_settings(
        environ={},
        toml_path=Path(tmp) / "absent.toml",
        var_dir=tmp,
        database_url=f"sqlite:///{tmp}/bench.db",
        allow_http_instances=True,
        allow_private_addresses=True,
        **overrides,
    )
    engine = database.make_engine(settings.database_url)
    database.upgrade(engine)
    engine.dispose()
    return settings


def bench_inbox_page(rounds: int) -> None:
    """p50 of the cache-first inbox page with the fleet behind it (goal ≤ 50 ms, whatever the instances do)."""
    from starlette.testclient import TestClient

    from portail.accounts.passwords import Passwords
    from portail.app import create_app

    fleet = Fleet()
    password = "bench password 2026"
    with tempfile.TemporaryDirectory() as tmp:
        settings = _sqlite_settings(
            tmp,
            issuer="http://localhost:8000",
            create_admin_on_first_run=False,
            probe_interval_seconds=0,
            instances_file=str(Path(tmp) / "none.toml"),
        )
        db = database.Database(settings)
        with db.session() as session:
            member = members.create_member(
                session,
                email="b@example.org",
                name="B",
                password_hash=Passwords(settings).hash(password),
                verified=True,
            )
            member_id = member.id or 0
        fleet.subscribe(db, member_id)
        db.dispose()
        timings: list[float] = []
        with TestClient(create_app(settings), base_url=settings.issuer, follow_redirects=False) as client:
            page = client.get("/login")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            client.post("/login", data={"email": "b@example.org", "password": password, "csrf_token": token})
            for _round in range(rounds):
                started = time.perf_counter()
                answer = client.get("/notifications")
                timings.append(time.perf_counter() - started)
                assert answer.status_code == 200
                time.sleep(0.05)  # a member's pace; background pulls go on meanwhile
    fleet.stop()
    cold = timings[0]
    timings.sort()
    p50, p95 = statistics.median(timings), timings[int(len(timings) * 0.95) - 1]
    print("## inbox page, cache-first (50 instances, 20-200 ms, 2 hanging)")
    print(f"slowest healthy instance latency : {fleet.slowest * 1000:.0f} ms")
    print(f"page loads                       : {len(timings)} (the first, cold: {cold * 1000:.1f} ms)")
    print(f"p50 / p95                        : {p50 * 1000:.1f} ms / {p95 * 1000:.1f} ms  (goal p50 ≤ 50 ms)")


def bench_refresh(rounds: int) -> None:
    fleet = Fleet()
    names, slowest = fleet.names, fleet.slowest
    with tempfile.TemporaryDirectory() as tmp:
        settings = _sqlite_settings(tmp)
        db = database.Database(settings)
        with db.session() as session:
            member = members.create_member(session, email="b@example.org", name="B", password_hash="x", verified=True)
            member_id = member.id or 0
        fleet.subscribe(db, member_id)
        assert len(names) == 50

        async def run() -> tuple[float, list[float], list[str]]:
            # The transport the application uses (SSRF guard, DNS pinning, one pool per host).
            aggregator = Aggregator(db, settings, transport=PinnedTransport(settings))
            try:
                timings = []
                unreachable: list[str] = []
                for index in range(rounds):
                    started = time.perf_counter()
                    report = await aggregator.refresh_member(
                        member_id, budget=settings.inbox_budget_seconds, force=True
                    )
                    timings.append(time.perf_counter() - started)
                    unreachable = report.unreachable
                    await aggregator.drain()  # the hanging pulls end at their own timeout; breakers count them
                    if index == 0:
                        cold = timings[0]
                return cold, timings, unreachable
            finally:
                await aggregator.aclose()

        cold, timings, unreachable = asyncio.run(run())
        db.dispose()
    fleet.stop()
    warm = timings[settings.notification_breaker_failures :]
    print("## background refresh of one member (50 instances, 20-200 ms, 2 hanging; not on the page's path)")
    print(f"slowest healthy instance latency : {slowest * 1000:.0f} ms")
    print(f"budget (inbox_budget_seconds)    : {settings.inbox_budget_seconds:.1f} s")
    print(f"cold refresh (breakers closed)   : {cold * 1000:.0f} ms  (ratio {cold / slowest:.2f})")
    print("per round (ms)                   : " + ", ".join(f"{t * 1000:.0f}" for t in timings))
    if warm:
        median = statistics.median(warm)
        print(
            f"warm refresh, breakers open (median of {len(warm)}): "
            f"{median * 1000:.0f} ms  (ratio {median / slowest:.2f})"
        )
    print(f"reported unreachable in last round: {', '.join(unreachable)}")


def _create_pg_database() -> tuple[str, str]:
    name = f"portail_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _clone_rows(
    conn: sa.Connection, table: str, count: int, overrides: dict[str, str], where: str = "TRUE", start: int = 2
) -> None:
    """Copy row id 1 of ``table`` for each g in ``start``..``count`` (``generate_series``) where ``where``
    holds of g, with SQL overrides."""
    columns = [c["name"] for c in sa.inspect(conn).get_columns(table) if c["name"] != "id"]
    values = ", ".join(overrides.get(c, f'"{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    # Table, column names and conditions come from this file, never from input.
    series = "generate_series(CAST(:start AS integer), CAST(:n AS integer)) AS g"
    statement = f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{table}", {series}'  # noqa: S608
    conn.execute(sa.text(f'{statement} WHERE "{table}".id = 1 AND ({where})'), {"n": count, "start": start})


class Probe:
    """Times of successive batches, and peak traced memory (tracemalloc, every thread) of those run
    while tracing. Times measured while tracing are not kept: tracemalloc slows Python several times."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.peaks: list[int] = []

    @contextlib.contextmanager
    def batch(self, *, traced: bool) -> Iterator[None]:
        if traced:
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            if traced:
                self.peaks.append(tracemalloc.get_traced_memory()[1] - base)
                tracemalloc.stop()
            else:
                self.times.append(elapsed)


# The mix of the issue: 41% of members have a pulled source (a linked Matrix account), 40% of those
# cursors are stale (read 3 days ago), 20% of members were seen this week (a live login session),
# 10% have a daily digest with one unread notification of today, and every member has one
# notification past the retention (90 days), half of them 100 days old, half 120.
LINKED, DIGEST, ACTIVE = "g % 100 < 41", "g % 10 = 0", "g % 5 = 0"


def _seed(engine: sa.Engine, db: database.Database, settings: Settings, count: int) -> None:
    from portail.accounts.models import LoginSession
    from portail.notifications.models import NotificationPreference, SourceLink, SourceState
    from portail.notifications.sealing import seal

    now = utcnow()
    old = now - dt.timedelta(days=3)
    with db.session() as session:
        member = members.create_member(session, email="m1@x.org", name="M", password_hash="x", verified=True)
        tool = Instance(slug="mx", name="Matrix", software="matrix", base_url="http://mx.bench", status="active")
        session.add(tool)
        session.flush()
        member_id, tool_id = member.id or 0, tool.id or 0
        token = seal(settings.secret_key, "syt_bench_token")
        session.add(SourceLink(member_id=member_id, instance_id=tool_id, kind="matrix", secret_sealed=token))
        session.add(SourceState(member_id=member_id, instance_id=tool_id, fetched_at=old))
        session.add(NotificationPreference(member_id=member_id, instance_id=tool_id, digest="daily"))
        session.add(LoginSession(token_hash="0" * 64, sid="s1", member_id=member_id, last_seen_at=now))
        old_row = {"member_id": member_id, "instance_id": tool_id, "external_id": "old", "title": "Une mention"}
        inbox.deliver(session, [{**old_row, "received_at": now - dt.timedelta(days=100)}])
    with engine.begin() as conn:
        _clone_rows(
            conn,
            "member",
            count,
            {"public_id": "md5(g::text)", "email": "'m' || g || '@x.org'", "email_key": "'m' || g || '@x.org'"},
        )
        _clone_rows(conn, "notification_source_link", count, {"member_id": "g"}, LINKED)
        _clone_rows(
            conn,
            "notification_source_state",
            count,
            {"member_id": "g", "fetched_at": "CASE WHEN g % 10 < 4 THEN fetched_at ELSE now() END"},
            LINKED,
        )
        _clone_rows(conn, "notification_preference", count, {"member_id": "g"}, DIGEST)
        _clone_rows(
            conn,
            "login_session",
            count,
            {"member_id": "g", "token_hash": "md5(g::text) || md5(g::text)", "sid": "md5(g::text)"},
            ACTIVE,
        )
        _clone_rows(
            conn,
            "notification",
            count,
            {
                "member_id": "g",
                "external_id": "g::text",
                "received_at": "received_at - (g % 2) * interval '20 days'",
            },
        )
        _clone_rows(
            conn,
            "notification",
            count,
            {
                "member_id": "g",
                "external_id": "'n' || g",
                "received_at": "now() - interval '2 hours'",
                "created_at": "now() - interval '2 hours'",
            },
            f"{DIGEST} OR g = 1",
            start=1,
        )
        conn.execute(sa.text("ANALYZE"))


def _matrix_transport() -> httpx.MockTransport:
    """A homeserver that answers at once with no new notification (the cost measured is Portail's)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"notifications": [], "next_token": None})

    return httpx.MockTransport(answer)


class Scale:
    """One seeded PostgreSQL database of ``count`` members, and one batch at a time of each piece
    of background work, so that two sizes can be measured in alternation (the machine's load then
    weighs on both alike)."""

    SCHEDULER, DIGEST, PURGE = "scheduler pass (200 members)", "digest batch (200 members)", "purge chunk (5,000 rows)"

    def __init__(self, count: int, tmp: str) -> None:
        self.count = count
        self.name, url = _create_pg_database()
        self.settings = load_settings(
            environ={},
            toml_path=Path(tmp) / "absent.toml",
            var_dir=str(Path(tmp) / str(count)),
            database_url=url,
            notification_pull_per_second=0,  # no pacing: Portail's own cost
        )
        self.engine = database.make_engine(url)
        database.upgrade(self.engine)
        self.db = database.Database(self.settings)
        started = time.perf_counter()
        _seed(self.engine, self.db, self.settings, count)
        print(f"# {count:,} members seeded in {time.perf_counter() - started:.0f} s", flush=True)
        self.probes = {key: Probe() for key in (self.SCHEDULER, self.DIGEST, self.PURGE)}
        self.loop = asyncio.new_event_loop()
        self.aggregator = Aggregator(self.db, self.settings, transport=_matrix_transport())

    def _sql(self, statement: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement))

    def scheduler_pass(self, *, traced: bool) -> None:
        """``Aggregator.refresh_due(200)``, as the background loop runs it (the homeserver answers at once)."""
        for _attempt in range(2):
            with self.probes[self.SCHEDULER].batch(traced=traced):
                refreshed = self.loop.run_until_complete(self.aggregator.refresh_due(200))
            if refreshed == 200:
                return
            # Everyone due was refreshed (ten thousand members run out): not a full batch, not counted.
            (self.probes[self.SCHEDULER].peaks if traced else self.probes[self.SCHEDULER].times).pop()
            self._sql(
                "UPDATE notification_source_state SET fetched_at = now() - interval '3 days' WHERE member_id % 10 < 4"
            )
        raise SystemExit("no due members")

    def digest_batch(self, *, traced: bool) -> None:
        """The next batch of ``digests.send_due`` (mail to the outbox): one call stopped after one batch."""
        from portail.notifications import digests

        walk, calls = digests.due_members, [0]

        def one_batch(*args: Any, **kwargs: Any) -> list[int]:
            calls[0] += 1
            return walk(*args, **kwargs) if calls[0] == 1 else []

        digests.due_members = one_batch
        try:
            for _attempt in range(2):
                with self.probes[self.DIGEST].batch(traced=traced), self.db.session() as session:
                    sent = digests.send_due(session, self.settings, "daily", batch=200)
                if sent >= 150:  # a batch of 200 due members, nearly all of them with something new
                    return
                (self.probes[self.DIGEST].peaks if traced else self.probes[self.DIGEST].times).pop()
                self._sql("UPDATE notification_preference SET last_digest_at = NULL")
                calls[0] = 0
        finally:
            digests.due_members = walk
        raise SystemExit("no due digests")

    def purge(self) -> None:
        """The whole purge: half the rows timed (per chunk), the other half traced (memory)."""
        probe = self.probes[self.PURGE]
        for traced, now in ((False, utcnow() - dt.timedelta(days=15)), (True, utcnow())):
            with probe.batch(traced=traced), self.db.session() as session:
                removed = inbox.purge(session, 90, now, chunk=5000)
            chunks = -(-removed // 5000)
            if not traced:
                probe.times[-1] /= chunks
            print(f"# {self.count:,}: purge {removed:,} rows in {chunks} chunks", flush=True)

    def close(self) -> None:
        self.loop.run_until_complete(self.aggregator.aclose())
        self.loop.close()
        self.db.dispose()
        self.engine.dispose()
        _drop_pg_database(self.name)


def bench_scale(sizes: list[int], rounds: int = 8) -> None:
    """The background work's cost per batch at two member counts, measured in alternation, and the
    ratio (goal ≤ 1.2, memory flat)."""
    with tempfile.TemporaryDirectory() as tmp:
        scales = [Scale(size, tmp) for size in sizes]
        try:
            for scale in scales:  # warm-up: connections, templates
                scale.scheduler_pass(traced=False)
                scale.digest_batch(traced=False)
                scale.probes[Scale.SCHEDULER].times.clear()
                scale.probes[Scale.DIGEST].times.clear()
            for index in range(rounds + 2):
                for scale in scales:
                    scale.scheduler_pass(traced=index >= rounds)
                    scale.digest_batch(traced=index >= rounds)
            for scale in scales:
                scale.purge()
        finally:
            for scale in scales:
                scale.close()
    small, large = scales[0], scales[-1]
    print(f"## background work per batch, PostgreSQL, {small.count:,} vs {large.count:,} members")
    print(f"(median time of {rounds} untraced batches, alternating sizes; peak tracemalloc growth of 2 traced ones)")
    for label in small.probes:
        a, b = small.probes[label], large.probes[label]
        ta, tb = statistics.median(a.times), statistics.median(b.times)
        ma, mb = max(a.peaks) / 2**20, max(b.peaks) / 2**20
        print(
            f"{label:30}: {ta * 1000:8.1f} ms vs {tb * 1000:8.1f} ms  ratio {tb / ta:.2f}   "
            f"memory {ma:6.1f} MiB vs {mb:6.1f} MiB  ratio {mb / ma:.2f}"
        )
        print(f"{'':30}  times (ms): {[round(t * 1000) for t in a.times]} vs {[round(t * 1000) for t in b.times]}")


def bench_push(seconds: float, clients: int, batch: int, members_count: int = 200) -> None:
    name, url = _create_pg_database()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "PORTAIL_ISSUER": issuer,
            "PORTAIL_DATABASE_URL": url,
            "PORTAIL_SECRET_KEY": "bench-secret-" + "x" * 40,
            "PORTAIL_VAR_DIR": tmp,
            "PORTAIL_INSTANCES_FILE": str(Path(tmp) / "none.toml"),
            "PORTAIL_CREATE_ADMIN_ON_FIRST_RUN": "false",
            "PORTAIL_NOTIFICATION_PUSH_PER_MINUTE": str(10**9),
            "PORTAIL_NOTIFICATION_PUSH_BATCH_MAX": str(batch),
        }
        settings = load_settings(environ=env, toml_path=Path(tmp) / "absent.toml")
        engine = database.make_engine(url)
        database.upgrade(engine)
        db = database.Database(settings)
        ring = keys.install(db, settings)
        with db.session() as session:
            client = OAuthClient(
                client_id="bench-pusher",
                name="Bench",
                grant_types=["client_credentials"],
                scope="notifications:push",
                sector_identifier="passerelles.example",
            )
            session.add(client)
            session.add(
                Instance(
                    slug="passerelles",
                    name="Passerelles",
                    software="passerelles",
                    base_url="https://passerelles.example",
                    status="active",
                    client_id="bench-pusher",
                )
            )
            subs = []
            for n in range(members_count):
                member = members.create_member(
                    session, email=f"m{n}@example.org", name=f"M{n}", password_hash="x", verified=True
                )
                subs.append(subjects.subject_for(session, settings.secret_key, member, client))
            token = tokens.issue_access_token(
                ring, settings, client, sub="bench-pusher", scope="notifications:push"
            ).token
        db.dispose()
        engine.dispose()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portail.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            env={**os.environ, **env},
            cwd=str(ROOT),
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("portail serve did not start")
                time.sleep(0.3)
            accepted, requests, elapsed = asyncio.run(_push_load(issuer, token, subs, seconds, clients, batch))
        finally:
            server.terminate()
            server.wait(15)
    _drop_pg_database(name)
    print("## push API (portail serve --workers 2, PostgreSQL)")
    print(f"clients {clients}, batch {batch}, {elapsed:.1f} s: {requests} requests, {accepted} notifications accepted")
    print(f"throughput: {accepted / elapsed:,.0f} notifications/s ({requests / elapsed:,.1f} requests/s)")


async def _push_load(
    issuer: str, token: str, subs: list[str], seconds: float, clients: int, batch: int
) -> tuple[int, int, float]:
    counter = iter(range(10**12))
    totals = {"accepted": 0, "requests": 0}
    headers = {"Authorization": f"Bearer {token}"}
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=issuer, timeout=30) as http:
            while time.monotonic() < stop_at:
                items = []
                for _ in range(batch):
                    n = next(counter)
                    items.append(
                        {
                            "id": f"b{n}",
                            "sub": subs[n % len(subs)],
                            "title": f"Nouvelle réponse {n}",
                            "body": "<p>Un message</p>",
                            "type": "reply",
                            "link": f"https://passerelles.example/c/{n}",
                        }
                    )
                response = await http.post("/api/v1/notifications", json={"notifications": items}, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"push failed: {response.status_code} {response.text[:200]}")
                totals["accepted"] += response.json()["accepted"]
                totals["requests"] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return totals["accepted"], totals["requests"], time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["refresh", "inbox", "push", "scale"])
    parser.add_argument("--scale", type=int, nargs=2, default=[10_000, 1_000_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--scale-rounds", type=int, default=8, help="batches timed per size and kind of work")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if args.only in (None, "refresh"):
        bench_refresh(args.rounds)
    if args.only in (None, "inbox"):
        bench_inbox_page(max(args.rounds, 50))
    if args.only in (None, "push"):
        bench_push(args.seconds, args.clients, args.batch)
    if args.only in (None, "scale"):
        bench_scale(list(args.scale), args.scale_rounds)


if __name__ == "__main__":
    main()
