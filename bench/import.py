"""Member import: ``portail users import`` of a 100,000-line CSV, then the same file again.

Writes a CSV of N members (default 100,000: a realistic export of a large community tool) with a mix
of legacy hashes as the real tools make them (bcrypt, phpass, Django PBKDF2, LDAP {SSHA}, SHA-512
crypt, none), runs ``portail users import --json`` on a fresh SQLite (or ``--database-url``)
deployment in a temporary folder, then runs it again (every line already present), and prints
lines/s and the peak memory of each run. Prints numbers, asserts nothing about time.

    .venv/bin/python bench/import.py
    .venv/bin/python bench/import.py --lines 20000 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
from passlib.hash import django_pbkdf2_sha256, ldap_salted_sha1, phpass, sha512_crypt

ROOT = Path(__file__).resolve().parents[1]


def sample_hashes() -> list[str]:
    """A few real hashes, reused across lines: making 100,000 of them would bench the hashing, not the import."""
    password = "bench password"
    return [
        bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode(),
        str(phpass.hash(password)),
        str(django_pbkdf2_sha256.hash(password)),
        str(ldap_salted_sha1.hash(password)),
        str(sha512_crypt.hash(password)),
        "",
    ]


def write_csv(path: Path, lines: int) -> None:
    hashes = sample_hashes()
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,name,password_hash,locale,verified,created_at\n")
        for i in range(lines):
            handle.write(f"membre{i}@bench.example,Membre {i},{hashes[i % len(hashes)]},fr,true,2020-01-01T00:00:00Z\n")


def run(env: dict[str, str], folder: Path, csv_path: Path) -> tuple[float, dict[str, object], int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("portail")), "users", "import", str(csv_path), "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(done.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, json.loads(done.stdout), max(peak, before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / "members.csv"
        write_csv(csv_path, args.lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_")}
        env.update({"PORTAIL_VAR_DIR": str(folder / "var"), "PYTHONPATH": str(ROOT)})
        if args.database_url:
            env["PORTAIL_DATABASE_URL"] = args.database_url
        size = csv_path.stat().st_size / 1e6
        print(f"{args.lines} lines, {size:.1f} MB, database: {args.database_url or 'SQLite'}")
        for label in ("first import", "same file again"):
            elapsed, report, peak_kib = run(env, folder, csv_path)
            existing = report["existing"]
            assert isinstance(existing, list)
            print(
                f"{label:16} {elapsed:7.1f} s  {args.lines / elapsed:8.0f} lines/s  "
                f"created {report['created']}, existing {len(existing)}, refused {len(report['refused'])}  "  # type: ignore[arg-type]
                f"peak RSS {peak_kib / 1024:.0f} MiB"
            )


if __name__ == "__main__":
    main()
