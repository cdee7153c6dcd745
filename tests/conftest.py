"""Shared fixtures: settings, a migrated database (SQLite, and PostgreSQL for tests marked so),
the real application behind an HTTP client, members, and the mail outbox.

Integration tests use the ``client`` fixture, which runs on SQLite and on PostgreSQL (the machine's
server on 127.0.0.1:5432; each run creates and drops its own database). If PostgreSQL cannot be
reached, the PostgreSQL leg fails with a message saying so: it never silently skips.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from portail import db as database
from portail.accounts import members
from portail.accounts.models import Member
from portail.accounts.passwords import Passwords
from portail.app import create_app
from portail.config import Settings, load_settings
from portail.oidc import keys
from tests.stub_server import StubServer

BASE_URL = "http://localhost:8000"
PASSWORD = "correct horse battery staple"
PG_ADMIN_URL = os.environ.get("PORTAIL_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def make_settings(tmp: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "issuer": BASE_URL,
        "var_dir": str(tmp / "var"),
        "database_url": database_url,
        "secret_key": "test-secret-key-" + "x" * 32,
        "instances_file": str(tmp / "no-instances.toml"),
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "argon2_parallelism": 1,
        "create_admin_on_first_run": False,
        "allow_http_instances": True,
        "allow_private_addresses": True,
        "probe_interval_seconds": 0,
        # Tests of the administration pages are about those pages, not about their second factor: the
        # gate (on by default) is turned on explicitly by tests/integration/accounts/test_second_factor_policy.py
        # and the journeys, where administrators enrol through the security page.
        "mfa_required_for_admins": False,
    }
    values.update(overrides)
    return load_settings(environ={}, toml_path=tmp / "absent.toml", **values)


# ---------------------------------------------------------------- signing keys

# A fresh database gets a new RSA-2048 and P-256 key at every application start: generating the RSA key,
# then validating it when the ring loads it, costs about a tenth of a second, and ~1,300 tests start an
# application. Tests other than those of key generation itself (marked ``real_signing_keys``) take their
# keys from a per-process pool instead: the first ``SIGNING_KEY_POOL`` keys of each algorithm are really
# generated, later calls hand them out again in turn. Consecutive calls still give different keys (a
# rotation, or two applications of one test, get distinct kids), and a kid is the key's thumbprint, so a
# kid seen again always names the very same key.
SIGNING_KEY_POOL = 16
_signing_key_pool: dict[str, list[keys.SigningJWK]] = {}
_signing_key_calls: dict[str, int] = {}
_imported_keys: dict[str, keys.SigningJWK] = {}
_real_new_jwk = keys._new_jwk
_real_import = keys._import


def _pooled_new_jwk(alg: str) -> keys.SigningJWK:
    pool = _signing_key_pool.setdefault(alg, [])
    call = _signing_key_calls.get(alg, 0)
    _signing_key_calls[alg] = call + 1
    if len(pool) < SIGNING_KEY_POOL:
        pool.append(_real_new_jwk(alg))
        return pool[-1]
    return pool[call % SIGNING_KEY_POOL]


def _memoized_import(data: Mapping[str, Any]) -> keys.SigningJWK:
    """``keys._import`` once per distinct JWK (the ring of every application reloads the pooled keys)."""
    text = json.dumps(dict(data), sort_keys=True)
    if text not in _imported_keys:
        _imported_keys[text] = _real_import(data)
    return _imported_keys[text]


@pytest.fixture(autouse=True)
def pooled_signing_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_signing_keys") is None:
        monkeypatch.setattr(keys, "_new_jwk", _pooled_new_jwk)
        monkeypatch.setattr(keys, "_import", _memoized_import)


# ---------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = database.make_engine(f"sqlite:///{path}")
    database.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"portail_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL injoignable / unreachable at {PG_ADMIN_URL}: {exc.orig}. "
            "Start it (pg_ctlcluster … main start) or set PORTAIL_TEST_PG_ADMIN.",
            pytrace=False,
        )
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = database.make_engine(url)
    database.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_KEPT_TABLES = ("alembic_version", "oauth_client_version")
# The identity sequences that have handed out a value since the last reset, with their table.
_USED_SEQUENCES = """
SELECT c.relname::text, s.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_depend d ON d.refobjid = c.oid AND d.deptype IN ('a', 'i')
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_sequences q ON q.schemaname = n.nspname AND q.sequencename = s.relname
WHERE n.nspname = 'public' AND c.relkind = 'r' AND q.last_value IS NOT NULL
"""
# (referencing table, referenced table) of every foreign key between two tables of the schema.
_FOREIGN_KEYS = """
SELECT c.relname::text, r.relname::text FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype = 'f' AND n.nspname = 'public'
"""


def _truncate_postgres(url: str) -> None:
    """Empty every table but the migrations' own (``_KEPT_TABLES``) and restart their identities, as
    a fresh migrated database has them: the tables already in that state are left alone.

    The tables that hold a row, or whose identity sequence has handed out a value, since the last
    reset are the only ones that differ from a freshly migrated database. They are emptied with
    DELETE, referencing tables first, and their sequences restarted: on a few rows a DELETE costs a
    millisecond where a TRUNCATE costs tens (new files for the table and each index). Triggers fire
    as for any DELETE (``oauth_client_version`` is bumped, as the TRUNCATE of ``oauth_client`` did).
    """
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                # oauth_client_version keeps its one row (a change to oauth_client bumps it): the
                # migrations wrote it, and nothing else does.
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename NOT IN :kept"
                ).bindparams(sa.bindparam("kept", expanding=True)),
                {"kept": list(_KEPT_TABLES)},
            )
        ]
        if not tables:
            engine.dispose()
            return
        # the names come from pg_tables, not from input
        non_empty = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)  # noqa: S608
        filled = {row[0] for row in conn.execute(sa.text(non_empty))}
        sequences = [(table, sequence) for table, sequence in conn.execute(sa.text(_USED_SEQUENCES)) if table in tables]
        references = {(child, parent) for child, parent in conn.execute(sa.text(_FOREIGN_KEYS)) if child != parent}
        left = [t for t in tables if t in filled]
        while left:
            # a table no other remaining table refers to (the tables outside ``filled`` are empty)
            ready = [t for t in left if not any((other, t) in references for other in left if other != t)]
            if not ready:  # a cycle of foreign keys: TRUNCATE … CASCADE empties them together
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in left) + " CASCADE"))
                break
            for table in ready:
                conn.execute(sa.text(f'DELETE FROM "{table}"'))  # noqa: S608
            left = [t for t in left if t not in ready]
        for _table, sequence in sequences:
            conn.execute(sa.text(f'ALTER SEQUENCE "{sequence}" RESTART'))
    engine.dispose()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, not migrated (for tests of what ``portail`` does on first start)."""
    name = f"portail_nodes_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "portail.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "portail.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# ---------------------------------------------------------------- application


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def unit_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Settings on SQLite only, for unit tests of domain modules."""
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def db(unit_settings: Settings) -> Iterator[database.Database]:
    handle = database.Database(unit_settings)
    yield handle
    handle.dispose()


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings, migrate=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as test_client:
        yield test_client


def create_member(
    settings: Settings, email: str = "alice@example.org", name: str = "Alice Tremblay", **kwargs: object
) -> Member:
    handle = database.Database(settings)
    try:
        with handle.session() as session:
            return members.create_member(
                session,
                email=email,
                name=name,
                password_hash=Passwords(settings).hash(str(kwargs.pop("password", PASSWORD))),
                verified=bool(kwargs.pop("verified", True)),
                **kwargs,  # type: ignore[arg-type]
            )
    finally:
        handle.dispose()


@pytest.fixture
def member(settings: Settings) -> Member:
    return create_member(settings)


# ---------------------------------------------------------------- forms and mail


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_from(html: str) -> str:
    """The CSRF token of a page; every form of the page must carry the same, non-empty one."""
    tokens = CSRF_RE.findall(html)
    assert tokens, "no CSRF token in page"
    assert all(token and token == tokens[0] for token in tokens), f"empty or differing CSRF tokens: {tokens}"
    return str(tokens[0])


def login(client: TestClient, email: str = "alice@example.org", password: str = PASSWORD, next_url: str = "/") -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text), "next": next_url},
    )
    assert response.status_code == 303, response.text


def outbox(settings: Settings) -> list[Message]:
    folder = settings.outbox_path
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def mail_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def link_in(message: Message) -> str:
    match = re.search(r"https?://\S+", mail_text(message))
    assert match, "no link in mail"
    return match.group(0)


def db_call(settings: Settings, fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn(session, *args)`` in one committed unit of work against the test database (carrying
    the stored signing keys, as the application's units of work do)."""
    handle = database.Database(settings)
    keys.attach(handle, settings)
    try:
        return handle.call(fn, *args)
    finally:
        handle.dispose()


def form_post(client: TestClient, page_url: str, action: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
    """GET ``page_url`` for its CSRF token, then POST ``data`` to ``action``."""
    page = client.get(page_url)
    return client.post(action, data={"csrf_token": csrf_from(page.text), **data}, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- a real HTTP receiver


class Receiver:
    """A local HTTP server (127.0.0.1, own thread) that records what it is sent.

    ``status`` is the answer to every request; ``hang`` makes it wait that many seconds before
    answering (a tool that hangs). ``requests`` holds ``(method, path, headers, body)`` tuples.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.status = 202
        self.hang = 0.0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.received = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, dict(self.headers.items()), body))
                owner.received.set()
                if owner.hang:
                    import time

                    time.sleep(owner.hang)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# ---------------------------------------------------------------- a real HTTP peer


class RecordedRequest:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


class HttpRecorder:
    """A real HTTP server on 127.0.0.1 that records every request and answers from a script.

    ``answers`` is a list of ``(status, body)`` consumed in order (the last one repeats);
    ``url(path)`` gives an absolute URL on it.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[RecordedRequest] = []
        self.answers: list[tuple[int, str, dict[str, str]]] = [(200, "", {})]
        self.received = threading.Event()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(
                    RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, text, headers = recorder.answers[0] if len(recorder.answers) == 1 else recorder.answers.pop(0)
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                recorder.received.set()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: tuple[int, str] | tuple[int, str, dict[str, str]]) -> None:
        self.answers = [(a[0], a[1], a[2] if len(a) > 2 else {}) for a in answers]  # type: ignore[misc]

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[RecordedRequest]:
        """Wait (bounded) until at least ``count`` requests arrived."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            self.received.wait(0.05)
            self.received.clear()
        return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()
    yield recorder
    recorder.close()


# ---------------------------------------------------------------- peers


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    """A real HTTP server on 127.0.0.1:<free port> with programmable answers (see tests/stub_server.py)."""
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real Redis: ``PORTAIL_TEST_REDIS_URL`` if set, else a private ``redis-server`` on a free port
    (so a test's pub/sub, rate-limit and leader keys never mix with another run's on 127.0.0.1:6379)."""
    configured = os.environ.get("PORTAIL_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server est requis / is needed (apt-get install redis-server) or set PORTAIL_TEST_REDIS_URL")
    port = free_port()
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen([binary, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


_PORTS_GIVEN: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (for servers started by tests), never one this process
    handed out before: a port is released between this call and the server's bind, so the kernel may
    offer it again to the next caller, and a journey's Portail then shared its port with a tool's
    stub server (whose ``200 ok`` passed for the provider's discovery document under load)."""
    import socket

    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no fresh loopback port after 100 tries")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last (stable order otherwise): Playwright's sync API marks its event loop as
    running in the main thread while a browser is open, which ``asyncio.run`` in other tests cannot share."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None or "/browser/" in item.nodeid)
