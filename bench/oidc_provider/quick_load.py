"""Quick closed-loop load check against the reference oidc-provider.

Starts ``node server.mjs`` (unless ``--issuer`` points at a running one), then
for each scenario runs ``--concurrency`` asyncio workers (uvloop if installed),
each with its own httpx AsyncClient = own keep-alive connection, for
``--duration`` seconds (after ``--warmup``), and prints iterations/s,
requests/s, errors, latency percentiles and, when the server was started here,
its CPU use (``srv_cpu``, 100% = one core) and server CPU milliseconds per
iteration (``srv_ms/it``, comparable even when the client is the bottleneck).
Each worker bootstraps its own session/tokens, so refresh tokens are chained
per worker (rotation is on).

    .venv/bin/python bench/oidc_provider/quick_load.py
    .venv/bin/python bench/oidc_provider/quick_load.py -c 16 -d 3 -s refresh authcode

Bounded: loopback only, stops by itself after warmup+duration per scenario.
On a 2-core box the Python client shares the CPU with Node, and one httpx
process tops out around 900 req/s: for discovery/jwks/userinfo the numbers are
client-bound (srv_cpu well under 100%); Node serves on one thread, so ~100%
srv_cpu means the server is saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe import (
    SCENARIO_FUNCS,
    SCENARIOS,
    BenchState,
    bootstrap,
    free_port,
    new_client,
    running_server,
)

# Requests sent per scenario iteration (authcode = GET /auth + POST /token).
REQUESTS_PER_ITERATION = {"authcode": 2}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def _worker_loop(
    issuer: str, name: str, concurrency: int, duration: float, warmup: float
) -> tuple[int, int, float, list[float]]:
    """Run ``concurrency`` workers; return (done, errors, measured seconds, latencies)."""
    func = SCENARIO_FUNCS[name]
    # One AsyncClient (one keep-alive connection) per worker: a single client
    # shared by 16 tasks loses ~60% throughput to httpcore pool contention.
    clients = [new_client(httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    try:
        states: list[BenchState] = [await bootstrap(c, issuer) for c in clients]
        lat: list[float] = []
        errors = 0
        done = 0
        measuring = False
        stop_at = time.monotonic() + warmup + duration

        async def worker(client: httpx.AsyncClient, st: BenchState) -> None:
            nonlocal errors, done
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                try:
                    await func(client, st)
                except Exception:
                    if measuring:
                        errors += 1
                    if name == "refresh":  # chain broken: start a new one
                        st.refresh_token = (await bootstrap(client, issuer)).refresh_token
                    continue
                if measuring:
                    done += 1
                    lat.append(time.perf_counter() - t0)

        tasks = [asyncio.create_task(worker(c, st)) for c, st in zip(clients, states, strict=True)]
        await asyncio.sleep(warmup)
        measuring = True
        t_start = time.monotonic()
        await asyncio.gather(*tasks)
        return done, errors, time.monotonic() - t_start, lat
    finally:
        for c in clients:
            await c.aclose()


def _run_loop(coro_args: tuple[str, str, int, float, float]) -> tuple[int, int, float, list[float]]:
    coro = _worker_loop(*coro_args)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def run_scenario(
    issuer: str, name: str, concurrency: int, duration: float, warmup: float, procs: int, pid: int | None
) -> dict[str, float]:
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    jobs = [(issuer, name, share, duration, warmup) for share in shares if share]
    cpu_start = t0 = 0.0

    def start_cpu() -> None:
        nonlocal cpu_start, t0
        time.sleep(warmup)
        t0 = time.monotonic()
        cpu_start = cpu_seconds(pid) if pid else 0.0

    if len(jobs) == 1:
        import threading

        th = threading.Thread(target=start_cpu)
        th.start()
        results = [_run_loop(jobs[0])]
        th.join()
    else:
        with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
            pending = pool.map_async(_run_loop, jobs)
            start_cpu()
            results = pending.get()
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(pid) - cpu_start) / wall * 100 if pid else float("nan")

    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    lat = sorted(x for r in results for x in r[3])
    per = REQUESTS_PER_ITERATION.get(name, 1)
    return {
        "iter_s": done / elapsed,
        "req_s": done * per / elapsed,
        "errors": errors,
        "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000 if len(lat) >= 100 else float("nan"),
        "srv_cpu": cpu,
        "srv_ms_it": cpu / 100 * 1000 / (done / elapsed) if done and pid else float("nan"),
    }


def run_all(issuer: str, args: argparse.Namespace, pid: int | None) -> None:
    print(f"concurrency={args.concurrency} procs={args.procs} duration={args.duration}s warmup={args.warmup}s")
    cols = ("iter/s", "req/s", "errors", "p50 ms", "p99 ms", "srv_cpu", "srv_ms/it")
    print(f"{'scenario':<10} " + " ".join(f"{c:>9}" for c in cols))
    for name in args.scenarios:
        r = run_scenario(issuer, name, args.concurrency, args.duration, args.warmup, args.procs, pid)
        print(
            f"{name:<10} {r['iter_s']:>9.0f} {r['req_s']:>9.0f} {r['errors']:>9.0f} "
            f"{r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} {r['srv_cpu']:>8.0f}% {r['srv_ms_it']:>9.2f}",
            flush=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=3.0, help="measured seconds per scenario")
    ap.add_argument("-w", "--warmup", type=float, default=1.0, help="unmeasured seconds per scenario")
    ap.add_argument("-s", "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("-p", "--procs", type=int, default=1, help="load-generator processes (split -c)")
    ap.add_argument("--issuer", help="use an already running server.mjs (must have /bench/bootstrap)")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.issuer:
        run_all(args.issuer.rstrip("/"), args, None)
        return 0
    with running_server(args.port or free_port(), {"QUIET": "1"}) as (issuer, proc):
        run_all(issuer, args, proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
