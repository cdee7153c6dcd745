"""Scale bench: does a login, a code exchange, a refresh, a userinfo call, an inbox page, an
organization's member list, the federation and privacy-officer desks, the expired-session sweep or
``portail users list`` cost more with 1,000,000 members than with 10,000? (target: p50 ratio <= 1.2)

For each size, a fresh PostgreSQL database (``PORTAIL_TEST_PG_ADMIN``) is migrated and filled in
bulk with ``generate_series``: the members, and 10 % of them with an open session (100,000 at
1,000,000; 1 % of those expired, waiting for the sweep), one audit event per member (and a few old
federation events), one organization with one member in 40 (25,000 at 1,000,000), and one
deletion request and one data export (a 16 kB archive) per 100 members. The bench member (an
administrator) logs in through the real pages of the application, in process (Starlette's
TestClient: no network, one process), and each operation is timed ``--rounds`` times: the two sizes
are timed alternately, round by round (the load of other programs weighs on both alike), and the
table prints the medians and their ratio. argon2id is set cheap (t=1, m=1 MiB, p=1) so that the
password hash does not hide the database's share of a login. ``--slow MS`` prints the statements
slower than MS milliseconds, to find what grows.

    .venv/bin/python bench/scale.py                 # 10,000 then 1,000,000 members (a few minutes)
    .venv/bin/python bench/scale.py --sizes 10000 100000 --rounds 30
    .venv/bin/python bench/scale.py --only "last page" --slow 20
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import oidc  # noqa: E402  (bench/oidc.py: its throw-away PostgreSQL databases)
import sqlalchemy as sa  # noqa: E402

EMAIL, PASSWORD = "bench@example.test", "une phrase de passe assez longue"

MEMBERS_SQL = """
INSERT INTO member (public_id, email, email_key, name, password_hash, locale, is_admin, roles,
                    terms_version, privacy_version, email_verified_at, created_at, updated_at)
SELECT md5('m' || g), 'member' || g || '@example.test', 'member' || g || '@example.test', 'Membre ' || g,
       '$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA', 'fr-CA', false, '',
       '2026-11', '2026-11', now(), now(), now()
FROM generate_series(1, :n) AS g
"""
SESSIONS_SQL = """
INSERT INTO login_session (token_hash, sid, member_id, created_at, last_seen_at, auth_time, amr,
                           user_agent, ip_address, end_reason)
SELECT md5('t' || id) || md5('u' || id), md5('s' || id), id, now(), now(), now(), 'pwd', 'bench', '127.0.0.1', ''
FROM member WHERE id % 10 = 0
"""
# A session seen "tomorrow" never expires during the bench; one in 100 has been idle for a month.
SESSIONS_SQL = SESSIONS_SQL.replace("now(), now(), now(), 'pwd'", "now(), now() + interval '1 day', now(), 'pwd'")
EXPIRED_SQL = "UPDATE login_session SET last_seen_at = now() - interval '30 days' WHERE member_id % 1000 = 0"
AUDIT_SQL = """
INSERT INTO audit_event (at, actor_id, action, category, subject_type, subject_id, member_id, reason, ip_address)
SELECT now() - interval '1 day' + g * interval '1 millisecond', g, 'member.login', 'member', 'member', g::text, g,
       '', ''
FROM generate_series(1, :n) AS g
"""
FEDERATION_AUDIT_SQL = """
INSERT INTO audit_event (at, actor_id, action, category, subject_type, subject_id, member_id, reason, ip_address)
SELECT now() - interval '30 days' + g * interval '1 minute', NULL, 'hoster.applied', 'federation', 'hoster', 'h' || g,
       NULL, '', ''
FROM generate_series(1, 20) AS g
"""
ORGANIZATION_SQL = """
INSERT INTO membership (organization_id, member_id, role, status, created_at)
SELECT :org, id, 'member', 'active', now() FROM member WHERE id % 40 = 0
"""
DELETIONS_SQL = """
INSERT INTO deletion_request (reference, member_id, status, requested_at, due_at, cancel_reason, tools_notified)
SELECT substr(md5('d' || id), 1, 16), id, 'cancelled', now(), now() + interval '30 days', 'member', 0
FROM member WHERE id % 100 = 7
"""
EXPORTS_SQL = """
INSERT INTO data_export (member_id, status, channel, requested_at, archive, size_bytes, error)
SELECT id, 'ready', 'web', now(), repeat('{"donnees": "x"}', 1000), 16000, '' FROM member WHERE id % 100 = 3
"""


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def prepare(stack: contextlib.ExitStack, size: int) -> dict[str, Callable[[], None]]:
    """A filled database and an application on it, logged in; the operations to time."""
    from sqlmodel import Session
    from starlette.testclient import TestClient

    from portail import db as database
    from portail.accounts import members
    from portail.accounts.passwords import Passwords
    from portail.app import create_app
    from portail.config import load_settings
    from portail.oidc import clients
    from tests.oidc_flow import Flow, form_token

    url = stack.enter_context(oidc._postgres_database())
    tmp = stack.enter_context(tempfile.TemporaryDirectory())
    settings = load_settings(
        environ={},
        toml_path=f"{tmp}/absent.toml",
        database_url=url,
        var_dir=tmp,
        secret_key="s" * 48,
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
        create_admin_on_first_run=False,
        mfa_required_for_admins=False,
    )
    engine = database.make_engine(url)
    database.upgrade(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(MEMBERS_SQL), {"n": size})
        conn.execute(sa.text(SESSIONS_SQL))
        conn.execute(sa.text(EXPIRED_SQL))
        conn.execute(sa.text(AUDIT_SQL), {"n": size})
        conn.execute(sa.text(FEDERATION_AUDIT_SQL))
        org = conn.execute(
            sa.text(
                "INSERT INTO organization (slug, name, kind, description, contact_email, created_at)"
                " VALUES ('banc', 'Banc', 'organization', '', '', now()) RETURNING id"
            )
        ).scalar_one()
        conn.execute(sa.text(ORGANIZATION_SQL), {"org": org})
        conn.execute(sa.text(DELETIONS_SQL))
        conn.execute(sa.text(EXPORTS_SQL))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    print(f"  {size:,} members and {size // 10:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)
    with Session(engine) as s:
        members.create_member(
            s,
            email=EMAIL,
            name="Banc",
            password_hash=Passwords(settings).hash(PASSWORD),
            verified=True,
            is_admin=True,
        )
        row, secret = clients.create_client(
            s, clients.ClientSpec(name="Outil", redirect_uris=["http://localhost:9000/callback"], trusted=True)
        )
        client_id = row.client_id
        s.commit()
    engine.dispose()

    app = create_app(settings, migrate=False)
    http = stack.enter_context(TestClient(app, base_url=settings.issuer, follow_redirects=False))
    stack.callback(app.state.db.dispose)

    def login() -> None:
        http.cookies.clear()
        page = http.get("/login")
        data = {"email": EMAIL, "password": PASSWORD, "csrf_token": form_token(page.text, "/login")}
        assert http.post("/login", data={**data, "next": "/"}).status_code == 303

    login()
    flow = Flow(http, client_id, secret)
    tokens = flow.tokens()

    def exchange() -> None:
        assert flow.token(flow.code()["code"]).status_code == 200

    def refresh() -> None:
        answer = flow.refresh(tokens["refresh_token"])
        assert answer.status_code == 200, answer.text
        tokens.update(answer.json())

    def userinfo() -> None:
        assert http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 200

    def inbox() -> None:
        assert http.get("/notifications").status_code == 200

    def roster_first() -> None:
        assert http.get("/organizations/banc").status_code == 200

    def roster_last() -> None:
        # the last keyset page (``?last=1``: the final rows of the roster index, read backwards)
        assert http.get("/organizations/banc?last=1").status_code == 200

    def federation_admin() -> None:
        assert http.get("/federation/admin").status_code == 200

    def privacy_officer() -> None:
        assert http.get("/privacy-officer").status_code == 200

    from portail.accounts import expiry

    def sweep() -> None:
        # One minute's sweep once the sessions seeded expired are ended (below, as the application's
        # own first pass does): what is left to pay is finding that nothing else expired. Rolled back.
        with Session(sweeper) as s:
            expiry.end_expired_sessions(s, settings, database.utcnow())
            s.rollback()

    def users_list() -> None:
        from portail import cli

        out = io.StringIO()
        with mock.patch.dict(os.environ, environ), contextlib.redirect_stdout(out):
            assert cli.main(["users", "list", "--json", "--limit", "10000"]) == 0
        assert out.getvalue().count('"email"') == 10_000

    environ = {
        "PORTAIL_DATABASE_URL": url,
        "PORTAIL_VAR_DIR": tmp,
        "PORTAIL_SECRET_KEY": "s" * 48,
        "PORTAIL_INSTANCES_FILE": f"{tmp}/absent.toml",
    }
    sweeper = database.make_engine(url)
    stack.callback(sweeper.dispose)
    with Session(sweeper) as s:  # the backlog the seeding left (1 % of the sessions), ended and committed
        while expiry.end_expired_sessions(s, settings, database.utcnow()):
            s.commit()
    # Then what autovacuum does next: until it runs, the index entries of the sessions just ended
    # (their old versions: ended_at NULL, an old last_seen_at) still lie in the range the sweep reads
    # (measured: 609 buffers per sweep query at 1,000,000 members, 2 after the vacuum).
    with sweeper.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE login_session"))
    return {
        "code flow (authorize + exchange)": exchange,
        "refresh": refresh,
        "userinfo": userinfo,
        "inbox page (GET /notifications)": inbox,
        "organization members, first page": roster_first,
        "organization members, last page": roster_last,
        "federation desk (GET /federation/admin)": federation_admin,
        "privacy officer (GET /privacy-officer)": privacy_officer,
        "expired-session sweep": sweep,
        "users list --json --limit 10000": users_list,
        "login (GET + POST /login)": login,  # last: it replaces the session the others use
    }


def log_slow_statements(threshold_ms: float) -> None:
    """Print each statement slower than ``threshold_ms`` (to find what grows with the member count)."""
    from sqlalchemy.engine import Engine

    @sa.event.listens_for(Engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info.setdefault("started", []).append(time.perf_counter())

    @sa.event.listens_for(Engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not conn.info.get("started"):  # began before the listener was installed
            return
        took = (time.perf_counter() - conn.info["started"].pop()) * 1000
        if took > threshold_ms:
            print(f"  slow {took:.1f} ms: {' '.join(statement.split())[:400]}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--only", default="", help="time only the operations whose name contains this")
    ap.add_argument("--slow", type=float, default=0, help="print every statement slower than this many ms")
    args = ap.parse_args()
    small, large = args.sizes
    print(f"scale bench: {small:,} vs {large:,} members, p50 of {args.rounds} rounds, in process, PostgreSQL")
    with contextlib.ExitStack() as stack:
        operations = {
            size: {name: call for name, call in prepare(stack, size).items() if args.only in name}
            for size in (small, large)
        }
        if args.slow:
            log_slow_statements(args.slow)
        times: dict[tuple[int, str], list[float]] = {}
        # Alternate the two sizes round by round, so the load of other programs weighs on both alike.
        for index in range(args.rounds + 1):
            for size, ops in operations.items():
                for name, call in ops.items():
                    took = timed(call)
                    if index:  # the first round warms up
                        times.setdefault((size, name), []).append(took)
    first = {name: statistics.median(times[(small, name)]) for name in operations[small]}
    second = {name: statistics.median(times[(large, name)]) for name in operations[large]}
    print(f"| operation | p50 ms at {small:,} | p50 ms at {large:,} | ratio |")
    print("|---|---|---|---|")
    worst = 0.0
    for name, base in first.items():
        ratio = second[name] / base
        worst = max(worst, ratio)
        print(f"| {name} | {base:.1f} | {second[name]:.1f} | {ratio:.2f} |")
    print(f"worst ratio {worst:.2f} (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
