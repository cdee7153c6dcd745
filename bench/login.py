"""Password logins per second through HTTP, against the argon2id verify rate alone (same run).

Starts ``portail serve`` (uvicorn, uvloop + httptools, one worker) on a fresh SQLite var dir with
the default argon2 parameters of ``Settings``, creates one member per client, then alternates, for
``--rounds`` rounds of ``--seconds`` each:

- raw: argon2id verifications per second with the same parameters, submitted by ``--clients``
  concurrent callers to a thread pool of ``password_hash_workers`` threads (what the server uses);
- http: ``--clients`` concurrent HTTP clients, each looping GET /login (for the CSRF token) then
  POST /login (expects 303 and a session cookie), then forgetting the session.

Alternating keeps both measurements under the same load on a shared machine. Prints both rates and
the ratio http / raw (target >= 0.85), and the CPU cost of one login in the server against the CPU
cost of one verification (a ratio that the load of other programs does not move). See bench/README.md.
The argon2id parameters come from ``PORTAIL_ARGON2_*`` and ``PORTAIL_PASSWORD_HASH_WORKERS`` when set.
Usage: python bench/login.py [--clients 8] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from portail import db as database  # noqa: E402
from portail.accounts import members  # noqa: E402
from portail.config import Settings, load_settings  # noqa: E402

PASSWORD = "une phrase de passe pour le banc d'essai"
KEPT_SETTINGS = ("PORTAIL_ARGON2_", "PORTAIL_PASSWORD_HASH_WORKERS")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_rate(settings: Settings, stored: str, clients: int, seconds: float) -> tuple[int, float, float]:
    """argon2id verifications: (count, seconds, CPU seconds) for ``clients`` callers and a pool of
    ``password_hash_workers`` threads."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
    )
    pool = ThreadPoolExecutor(max_workers=settings.password_hash_workers)
    done = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            pool.submit(hasher.verify, stored, PASSWORD).result()
            with lock:
                done += 1

    start, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=caller) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    pool.shutdown()
    return done, elapsed, cpu


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by a process (user + system, Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_rate(base_url: str, emails: list[str], seconds: float) -> tuple[int, float, int]:
    """Complete logins (GET /login + POST /login -> 303): (count, seconds, failures)."""
    done = 0
    failures = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client(email: str) -> None:
        nonlocal done, failures
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
            while time.perf_counter() < deadline:
                http.cookies.delete("portail_session")
                page = await http.get("/login")
                match = CSRF.search(page.text)
                assert match, page.text[:500]
                answer = await http.post(
                    "/login", data={"email": email, "password": PASSWORD, "csrf_token": match.group(1), "next": "/"}
                )
                if answer.status_code == 303 and "portail_session" in answer.headers.get("set-cookie", ""):
                    done += 1
                else:
                    failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(email) for email in emails))
    return done, time.perf_counter() - start, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="raw/http alternations (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="portail-bench-") as tmp:
        port = free_port()
        # Other PORTAIL_* settings of the caller's shell are dropped (a bench starts from the defaults),
        # but the password-hashing ones are kept: PORTAIL_ARGON2_TIME_COST=5 PORTAIL_ARGON2_MEMORY_COST_KIB=7168
        # PORTAIL_ARGON2_PARALLELISM=1 measures Keycloak's published parameters.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_") or k.startswith(KEPT_SETTINGS)}
        env.update(
            PYTHONPATH=str(ROOT),
            PORTAIL_CONFIG=f"{tmp}/absent.toml",
            PORTAIL_VAR_DIR=f"{tmp}/var",
            PORTAIL_ISSUER=f"http://127.0.0.1:{port}",
            PORTAIL_INSTANCES_FILE=f"{tmp}/absent-instances.toml",
            PORTAIL_CREATE_ADMIN_ON_FIRST_RUN="false",
            # Every client logs in from 127.0.0.1 and never fails: the throttle never blocks.
        )
        settings = load_settings(environ=env)
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        stored = hasher.hash(PASSWORD)
        db = database.Database(settings)
        database.upgrade(db.engine)
        emails = [f"bench{i}@example.org" for i in range(args.clients)]
        with db.session() as session:
            for email in emails:
                members.create_member(session, email=email, name="Banc d'essai", password_hash=stored, verified=True)
        db.dispose()

        print(
            f"argon2id t={settings.argon2_time_cost} m={settings.argon2_memory_cost_kib} KiB "
            f"p={settings.argon2_parallelism}; pool of {settings.password_hash_workers} threads; "
            f"{args.clients} concurrent clients; {args.rounds} rounds of {args.seconds:.0f} s; {os.cpu_count()} CPUs"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "portail.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        raw = [0, 0.0, 0.0]
        http = [0, 0.0, 0.0]
        failures = 0
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/login", timeout=2).raise_for_status()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            asyncio.run(http_rate(url, emails, 2))  # warm-up
            for index in range(args.rounds):
                count, seconds, cpu = raw_rate(settings, stored, args.clients, args.seconds)
                raw = [raw[0] + count, raw[1] + seconds, raw[2] + cpu]
                server_cpu = process_cpu(server.pid)
                count, seconds, failed = asyncio.run(http_rate(url, emails, args.seconds))
                http = [http[0] + count, http[1] + seconds, http[2] + process_cpu(server.pid) - server_cpu]
                failures += failed
                print(
                    f"round {index + 1}: raw {raw[0] / raw[1]:6.2f} verify/s   http {http[0] / http[1]:6.2f} login/s",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=15)
        raw_rate_ = raw[0] / raw[1]
        http_rate_ = http[0] / http[1]
        raw_cpu = 1000 * raw[2] / max(raw[0], 1)
        http_cpu = 1000 * http[2] / max(http[0], 1)
        ratio = http_rate_ / raw_rate_
        print(f"raw argon2id verify : {raw_rate_:7.2f} /s   {raw_cpu:7.1f} ms CPU each")
        print(f"HTTP logins         : {http_rate_:7.2f} /s   {http_cpu:7.1f} ms server CPU each  ({failures} failed)")
        print(f"ratio HTTP / raw    : {ratio:7.3f}  (target >= 0.85)")
        print(
            f"CPU ratio           : {raw_cpu / http_cpu:7.3f}  (verify CPU / login CPU: share of a login spent hashing)"
        )
        return 0 if ratio >= 0.85 and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
