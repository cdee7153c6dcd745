"""OpenID Connect provider benchmark: Portail side by side with panva's ``oidc-provider`` (node).

In one run, for each scenario (discovery, JWKS, userinfo, refresh-token grant, full authorization
code flow of a logged-in member who already consented, client-credentials grant, introspection of
an access token by its client) and each concurrency (16 and 64), it
measures requests/s, iterations/s, p50/p99 latency and the server's CPU, for:

* ``oidc-provider``: ``bench/oidc_provider/server.mjs`` (node, one thread, in-memory store);
* Portail with one process and with ``--workers 2``, on SQLite and on PostgreSQL
  (``portail serve``, i.e. uvicorn + httptools + uvloop, exactly as in production);

then prints each ratio Portail / oidc-provider (requests per second; above 1.0 Portail is faster).
The request sequences are those of ``bench/oidc_provider/driver_notes.md`` (same client
``bench``/``bench-secret``, same redirect URI, PKCE S256, rotation of refresh tokens, chained per
worker; the bench client is first-party on both sides, so no consent page). Everything listens on
127.0.0.1 and every loop stops after ``--warmup + --duration`` seconds.

    .venv/bin/python bench/oidc.py                      # full matrix (about 5 minutes)
    .venv/bin/python bench/oidc.py -d 2 -c 16 --only sqlite-1 -s refresh authcode

The load generator runs on the same machine as the servers: on 2 cores, a Python client tops out
near 1,000 requests/s, so cheap endpoints (discovery, JWKS) are client-bound for every server;
``srv_ms/it`` (server CPU milliseconds per iteration) is the comparison that does not depend on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "oidc_provider"))

from probe import (  # noqa: E402
    SCENARIO_FUNCS,
    SCENARIOS,
    BenchState,
    free_port,
    new_client,
    pkce_pair,
    running_server,
    wait_for_discovery,
)
from probe import bootstrap as node_bootstrap  # noqa: E402

CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret"
REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = "openid profile email"
EMAIL = "bench@example.test"
PASSWORD = "bench password, long enough"
PG_ADMIN_URL = os.environ.get("PORTAIL_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUESTS_PER_ITERATION = {"authcode": 2}
CONFIGS = ("sqlite-1", "sqlite-2", "postgres-1", "postgres-2")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# --------------------------------------------------------------------------- Portail as a server


def _prepare_portail(database_url: str, var_dir: Path, issuer: str) -> None:
    """Migrate, then create the bench member and the first-party bench client (same secret as node)."""
    from portail import db as database
    from portail.accounts import members
    from portail.accounts.passwords import Passwords
    from portail.config import load_settings
    from portail.oidc.clients import ClientSpec, create_client, hash_secret

    settings = load_settings(
        environ={},
        toml_path=var_dir / "absent.toml",
        issuer=issuer,
        database_url=database_url,
        var_dir=str(var_dir),
        secret_key="bench-secret-key-" + "x" * 32,
    )
    handle = database.Database(settings)
    database.upgrade(handle.engine)
    with handle.session() as s:
        members.create_member(
            s, email=EMAIL, name="Bench User", password_hash=Passwords(settings).hash(PASSWORD), verified=True
        )
        client, _secret = create_client(
            s,
            ClientSpec(
                name="Bench",
                client_id=CLIENT_ID,
                redirect_uris=[REDIRECT_URI],
                scope=SCOPE,
                trusted=True,
                subject_type="public",
                grant_types=["authorization_code", "refresh_token", "client_credentials"],  # bench/sizing.py
            ),
        )
        client.client_secret_hash = hash_secret(CLIENT_SECRET)
        s.add(client)
    handle.dispose()


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    import sqlalchemy as sa

    name = f"portail_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def running_portail(config: str) -> Iterator[tuple[str, int]]:
    """``portail serve`` for ``sqlite-1``, ``sqlite-2``, ``postgres-1`` or ``postgres-2``; yields (issuer, pid)."""
    backend, workers = config.split("-")
    with tempfile.TemporaryDirectory(prefix="portail-bench-") as tmp, contextlib.ExitStack() as stack:
        var_dir = Path(tmp)
        url = (
            f"sqlite:///{var_dir / 'portail.db'}" if backend == "sqlite" else stack.enter_context(_postgres_database())
        )
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        _prepare_portail(url, var_dir, issuer)
        env = {
            **os.environ,
            "PORTAIL_ISSUER": issuer,
            "PORTAIL_DATABASE_URL": url,
            "PORTAIL_VAR_DIR": str(var_dir),
            "PORTAIL_SECRET_KEY": "bench-secret-key-" + "x" * 32,
            "PORTAIL_CREATE_ADMIN_ON_FIRST_RUN": "0",
            "PORTAIL_INSTANCES_FILE": str(var_dir / "none.toml"),
            "PORTAIL_CONFIG": str(var_dir / "absent.toml"),
        }
        command = [sys.executable, "-m", "portail.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", workers, "--log-level", "warning"]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for_discovery(issuer, proc, timeout=180)
            yield issuer, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    cookies = {}
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        cookies[name.strip()] = rest.split(";", 1)[0]
    return cookies


async def portail_login(client: httpx.AsyncClient, issuer: str) -> str:
    """Log the bench member in through the real form; returns the Cookie header of the session."""
    page = await client.get(f"{issuer}/login")
    cookies = _set_cookies(page)
    match = CSRF_RE.search(page.text)
    assert match, "no CSRF token on the login page"
    answer = await client.post(
        f"{issuer}/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1), "next": "/"},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
    )
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    cookies.update(_set_cookies(answer))
    return "; ".join(f"{k}={v}" for k, v in cookies.items() if k == "portail_session")


async def portail_bootstrap(client: httpx.AsyncClient, issuer: str, cookie_header: str) -> BenchState:
    """The same three things oidc-provider's /bench/bootstrap gives: session, access and refresh token."""
    disco = (await client.get(f"{issuer}/.well-known/openid-configuration")).raise_for_status().json()
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": "s",
            "nonce": "n",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    r = await client.get(f"{disco['authorization_endpoint']}?{query}", headers={"Cookie": cookie_header})
    code = parse_qs(urlsplit(r.headers.get("location", "")).query).get("code", [""])[0]
    assert code, (r.status_code, r.headers.get("location"), r.text[:300])
    state = BenchState(issuer, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPE, disco, "", "", cookie_header)
    t = await client.post(
        disco["token_endpoint"],
        headers={"Authorization": state.basic_auth},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    body = t.raise_for_status().json()
    state.access_token, state.refresh_token = body["access_token"], body["refresh_token"]
    return state


# --------------------------------------------------------------------------- the load loop


@dataclass
class Result:
    iterations: int
    errors: int
    seconds: float
    latencies: list[float]


async def _load(kind: str, issuer: str, name: str, concurrency: int, duration: float, warmup: float) -> Result:
    func = SCENARIO_FUNCS[name]
    clients = [new_client(httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    try:
        if kind == "portail":
            cookie = await portail_login(clients[0], issuer)

            async def boot(c: httpx.AsyncClient) -> BenchState:
                return await portail_bootstrap(c, issuer, cookie)
        else:

            async def boot(c: httpx.AsyncClient) -> BenchState:
                return await node_bootstrap(c, issuer)

        states = [await boot(c) for c in clients]
        latencies: list[float] = []
        errors = done = 0
        measuring = False
        stop_at = time.monotonic() + warmup + duration

        async def worker(c: httpx.AsyncClient, st: BenchState) -> None:
            nonlocal errors, done
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                try:
                    await func(c, st)
                except Exception:
                    if measuring:
                        errors += 1
                    if name == "refresh":  # the chain is broken: start a new one
                        st.refresh_token = (await boot(c)).refresh_token
                    continue
                if measuring:
                    done += 1
                    latencies.append(time.perf_counter() - t0)

        tasks = [asyncio.create_task(worker(c, st)) for c, st in zip(clients, states, strict=True)]
        await asyncio.sleep(warmup)
        measuring = True
        started = time.monotonic()
        await asyncio.gather(*tasks)
        return Result(done, errors, time.monotonic() - started, latencies)
    finally:
        for c in clients:
            await c.aclose()


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants (uvicorn's workers)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    pending.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(
    kind: str, issuer: str, pid: int, name: str, concurrency: int, args: argparse.Namespace
) -> dict[str, float]:
    import threading

    marks: dict[str, float] = {}

    def mark_start() -> None:
        time.sleep(args.warmup)
        marks["t0"], marks["cpu0"] = time.monotonic(), _tree_cpu_seconds(pid)

    marker = threading.Thread(target=mark_start)
    marker.start()
    try:
        import uvloop

        result = uvloop.run(_load(kind, issuer, name, concurrency, args.duration, args.warmup))
    except ImportError:
        result = asyncio.run(_load(kind, issuer, name, concurrency, args.duration, args.warmup))
    marker.join()
    wall = time.monotonic() - marks["t0"]
    cpu = (_tree_cpu_seconds(pid) - marks["cpu0"]) / wall
    lat = sorted(result.latencies)
    iters = result.iterations / result.seconds if result.seconds else 0.0
    return {
        "iter_s": iters,
        "req_s": iters * REQUESTS_PER_ITERATION.get(name, 1),
        "errors": float(result.errors),
        "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99_ms": lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000 if lat else float("nan"),
        "srv_cpu": cpu * 100,
        "srv_ms_it": cpu * 1000 / iters if iters else float("nan"),
    }


# --------------------------------------------------------------------------- the report


def _line(label: str, name: str, concurrency: int, r: dict[str, float], ratio: str = "") -> str:
    return (
        f"| {label:<20} | {name:<18} | {concurrency:>3} | {r['req_s']:>8.0f} | {r['iter_s']:>8.0f} | "
        f"{r['p50_ms']:>7.1f} | {r['p99_ms']:>7.1f} | {r['srv_cpu']:>6.0f}% | {r['srv_ms_it']:>7.2f} | "
        f"{r['errors']:>5.0f} | {ratio:>6} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("-d", "--duration", type=float, default=4.0, help="measured seconds per cell")
    ap.add_argument("-w", "--warmup", type=float, default=1.0, help="unmeasured seconds per cell")
    ap.add_argument("-s", "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--only", nargs="+", choices=CONFIGS, default=list(CONFIGS), help="Portail configurations")
    args = ap.parse_args()

    print(f"duration {args.duration}s + warmup {args.warmup}s per cell; loopback; load generator: 1 process")
    columns = ("server", "scenario", "c", "req/s", "iter/s", "p50 ms", "p99 ms", "srv_cpu", "srv_ms/it", "err", "×node")
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    reference: dict[tuple[str, int], float] = {}
    with running_server(free_port(), {"QUIET": "1"}) as (issuer, proc):
        for name in args.scenarios:
            for concurrency in args.concurrency:
                r = measure("node", issuer, proc.pid, name, concurrency, args)
                reference[(name, concurrency)] = r["req_s"]
                print(_line("oidc-provider", name, concurrency, r), flush=True)
    for config in args.only:
        try:
            with running_portail(config) as (issuer, pid):
                for name in args.scenarios:
                    for concurrency in args.concurrency:
                        r = measure("portail", issuer, pid, name, concurrency, args)
                        base = reference.get((name, concurrency)) or float("nan")
                        print(_line(f"portail {config}", name, concurrency, r, f"{r['req_s'] / base:.2f}"), flush=True)
        except (RuntimeError, TimeoutError, OSError) as exc:  # one configuration failing does not stop the others
            print(f"| portail {config} | did not run: {exc} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
