"""The figures of ``docs/sizing.md``, in Keycloak's shape, in one run on the machine at hand.

1. Password logins per core, at Portail's argon2id defaults and at Keycloak's published test
   parameters (t=5, m=7 MiB, p=1): ``bench/login.py`` run twice with ``PORTAIL_ARGON2_*``; per core
   is 1000 / (server CPU milliseconds per login), a figure other programs' load does not move much.
2. Code exchanges, refreshes, client-credentials grants and userinfo calls per core: the loops of
   ``bench/oidc.py`` against ``portail serve`` (one worker) on PostgreSQL; per core is
   1000 / ``srv_ms/it`` (PostgreSQL's own CPU is not counted; section 4 gives its work as statements).
3. Memory: resident memory of that server process after start and after the load; then 10,000
   sessions opened in its database, the process's memory again (sessions live in the database,
   not in the process) and the bytes the ``login_session`` table and indexes grew by.
4. Database statements per login, per code exchange, per refresh and per userinfo call: counted
   with a SQLAlchemy ``before_cursor_execute`` listener around one request, in process, on PostgreSQL.

    .venv/bin/python bench/sizing.py                  # about 3 minutes
    .venv/bin/python bench/sizing.py --seconds 5 --skip-logins
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import oidc  # noqa: E402  (bench/oidc.py)
import sqlalchemy as sa  # noqa: E402
from probe import SCENARIO_FUNCS, BenchState  # noqa: E402

KEYCLOAK_ARGON2 = {
    "PORTAIL_ARGON2_TIME_COST": "5",
    "PORTAIL_ARGON2_MEMORY_COST_KIB": "7168",
    "PORTAIL_ARGON2_PARALLELISM": "1",
}
LOGIN_LINE = re.compile(r"HTTP logins\s*:\s*([\d.]+) /s\s+([\d.]+) ms server CPU each")
PARAMS_LINE = re.compile(r"^argon2id .*$", re.M)


async def sc_clientcreds(client: httpx.AsyncClient, st: BenchState) -> None:
    """A machine client's client-credentials grant (no member, no refresh token)."""
    r = await client.post(
        st.endpoint("token_endpoint"),
        headers={"Authorization": st.basic_auth},
        data={"grant_type": "client_credentials"},
    )
    if r.status_code != 200 or "access_token" not in r.json():
        raise AssertionError(f"client_credentials: {r.status_code} {r.text[:200]}")


SCENARIO_FUNCS["clientcreds"] = sc_clientcreds


# --------------------------------------------------------------------------- 1. logins


def logins(seconds: float, rounds: int, clients: int) -> None:
    print("## Password logins (bench/login.py, one worker, SQLite)")
    print("| argon2id parameters | logins/s (shared machine) | server CPU ms per login | logins/s per core |")
    print("|---|---|---|---|")
    for extra in ({}, KEYCLOAK_ARGON2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_ARGON2_")}
        env.update(extra)
        command = [sys.executable, str(ROOT / "bench" / "login.py"), "--seconds", str(seconds)]
        command += ["--rounds", str(rounds), "--clients", str(clients)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        found, params = LOGIN_LINE.search(done.stdout), PARAMS_LINE.search(done.stdout)
        if not found or not params:
            print(f"| {extra or 'defaults'} | did not run: {done.stdout[-300:]} {done.stderr[-300:]} |")
            continue
        rate, cpu_ms = float(found.group(1)), float(found.group(2))
        label = params.group(0).split(";")[0]
        print(f"| {label} | {rate:.1f} | {cpu_ms:.0f} | {1000 / cpu_ms:.1f} |", flush=True)


# --------------------------------------------------------------------------- 2 and 3. grants, memory


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_sessions(database_url: str, count: int) -> int:
    """Open ``count`` sessions for the bench member straight in the database; bytes the table grew by."""
    from sqlmodel import select

    from portail import db as database
    from portail.accounts import sessions
    from portail.accounts.models import Member
    from portail.config import load_settings

    settings = load_settings(environ={}, toml_path="/nonexistent.toml", database_url=database_url, secret_key="x" * 48)
    handle = database.Database(settings)
    size = sa.text("SELECT pg_total_relation_size('login_session')")
    with handle.engine.connect() as conn:
        before = int(conn.execute(size).scalar_one())
    with handle.session() as session:
        member = session.exec(select(Member)).first()
        assert member is not None
        for _ in range(count):
            sessions.open_session(session, member, user_agent="Mozilla/5.0 (bench)", ip_address="127.0.0.1")
    with handle.engine.connect() as conn:
        conn.execute(sa.text("ANALYZE login_session"))
        after = int(conn.execute(size).scalar_one())
    handle.dispose()
    return after - before


@contextlib.contextmanager
def database_url_of_next_server() -> Iterator[list[str]]:
    """Catch the PostgreSQL URL ``bench/oidc.py`` creates for its server."""
    seen: list[str] = []
    original = oidc._postgres_database

    @contextlib.contextmanager
    def spy() -> Iterator[str]:
        with original() as url:
            seen.append(url)
            yield url

    oidc._postgres_database = spy
    try:
        yield seen
    finally:
        oidc._postgres_database = original


def grants_and_memory(seconds: float, concurrency: int) -> None:
    args = argparse.Namespace(duration=seconds, warmup=1.0)
    print("\n## OpenID Connect grants (bench/oidc.py loops, portail serve, one worker, PostgreSQL)")
    print(f"{concurrency} concurrent clients, {seconds:.0f} s per line after 1 s of warm-up")
    print("| operation | per s (shared machine) | p50 ms | server CPU ms each | per core |")
    print("|---|---|---|---|---|")
    with database_url_of_next_server() as urls, oidc.running_portail("postgres-1") as (issuer, pid):
        started_kib = rss_kib(pid)
        for name, label in (
            ("authcode", "code flow (authorize + code exchange)"),
            ("refresh", "refresh (rotation, new ID token)"),
            ("clientcreds", "client-credentials grant"),
            ("userinfo", "userinfo"),
        ):
            r = oidc.measure("portail", issuer, pid, name, concurrency, args)
            print(
                f"| {label} | {r['iter_s']:.0f} | {r['p50_ms']:.1f} | {r['srv_ms_it']:.2f} | "
                f"{1000 / r['srv_ms_it']:.0f} |",
                flush=True,
            )
        loaded_kib = rss_kib(pid)
        grown = open_sessions(urls[0], 10_000)
        for _ in range(50):
            httpx.get(f"{issuer}/.well-known/openid-configuration")
        with_sessions_kib = rss_kib(pid)
    print("\n## Memory")
    print("| what | value |")
    print("|---|---|")
    print(f"| server process after start (RSS) | {started_kib / 1024:.0f} MiB |")
    print(f"| server process after the load above | {loaded_kib / 1024:.0f} MiB |")
    print(f"| same process with 10,000 more sessions open | {with_sessions_kib / 1024:.0f} MiB |")
    print(f"| PostgreSQL: login_session table + indexes per 10,000 sessions | {grown / 1024 / 1024:.1f} MiB |")


# --------------------------------------------------------------------------- 4. statements


def statements() -> None:
    from sqlmodel import Session
    from starlette.testclient import TestClient

    from portail.accounts import members
    from portail.accounts.passwords import Passwords
    from portail.app import create_app
    from portail.config import load_settings
    from portail.oidc import clients
    from tests.oidc_flow import Flow, form_token

    email, password = "statements@example.test", "une phrase de passe assez longue"
    print("\n## Database statements per operation (PostgreSQL, counted around one request)")
    print("| operation | statements |")
    print("|---|---|")
    with oidc._postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            environ={}, toml_path=f"{tmp}/absent.toml", database_url=url, var_dir=tmp, secret_key="s" * 48
        )
        app = create_app(settings)
        engine = app.state.db.engine
        with Session(engine) as s:
            members.create_member(
                s, email=email, name="Compte", password_hash=Passwords(settings).hash(password), verified=True
            )
            _row, secret = clients.create_client(
                s, clients.ClientSpec(name="Outil", redirect_uris=["http://localhost:9000/callback"], trusted=True)
            )
            client_id = _row.client_id
            s.commit()
        counted: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            counted.append(statement)

        def around(label: str, call: Any) -> Any:
            counted.clear()
            sa.event.listen(engine, "before_cursor_execute", count)
            try:
                result = call()
            finally:
                sa.event.remove(engine, "before_cursor_execute", count)
            print(f"| {label} | {len(counted)} |", flush=True)
            return result

        with TestClient(app, base_url=settings.issuer, follow_redirects=False) as http:
            page = http.get("/login")
            data = {"email": email, "password": password, "csrf_token": form_token(page.text, "/login"), "next": "/"}
            answer = around("password login (POST /login)", lambda: http.post("/login", data=data))
            assert answer.status_code == 303, answer.text[:300]
            flow = Flow(http, client_id, secret)
            code = flow.code()["code"]
            tokens = around("code exchange (POST /token)", lambda: flow.token(code)).json()
            refreshed = around("refresh (POST /token)", lambda: flow.refresh(tokens["refresh_token"]))
            assert refreshed.status_code == 200, refreshed.text
            bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
            around("userinfo (GET /userinfo)", lambda: http.get("/userinfo", headers=bearer))
            around("a logged-in member's home page (GET /)", lambda: http.get("/"))
        app.state.db.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per line (default 8)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--login-rounds", type=int, default=2)
    ap.add_argument("--skip-logins", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {time.ctime()}")
    if not args.skip_logins:
        logins(args.seconds, args.login_rounds, 8)
    grants_and_memory(args.seconds, args.concurrency)
    statements()
    load = os.getloadavg()
    print(f"\nload average at end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
