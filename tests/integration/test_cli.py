"""The ``portail`` command, run as a real subprocess against a temporary var dir and database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from portail.accounts import sessions
from portail.accounts.models import LoginSession, Member
from portail.config import Settings
from tests.conftest import db_call, free_port

ROOT = Path(__file__).resolve().parents[2]


def cli_env(tmp_path: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PORTAIL_CONFIG=str(tmp_path / "absent.toml"),
        PORTAIL_VAR_DIR=str(tmp_path / "var"),
        PORTAIL_INSTANCES_FILE=str(tmp_path / "no-instances.toml"),
        PORTAIL_ARGON2_TIME_COST="1",
        PORTAIL_ARGON2_MEMORY_COST_KIB="1024",
        PORTAIL_ARGON2_PARALLELISM="1",
        PORTAIL_CREATE_ADMIN_ON_FIRST_RUN="false",
    )
    if database_url:
        env["PORTAIL_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def portail(
    tmp_path: Path, database_url: str | None, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portail.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path, database_url, **env),
        timeout=60,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_users_create_list_and_duplicate(tmp_path: Path, settings: Settings) -> None:
    url = settings.database_url
    created = portail(
        tmp_path,
        url,
        "users",
        "create",
        "Chloe@Example.org",
        "--name",
        "Chloé Roy",
        "--password-stdin",
        "--admin",
        "--json",
        stdin="un mot de passe solide\nsecond line ignored\n",
    )
    assert created.returncode == 0, created.stderr
    summary = json.loads(created.stdout)
    assert summary["email"] == "Chloe@example.org" and summary["admin"] is True
    member = db_call(settings, lambda s: s.exec(select(Member)).one())
    assert member.verified and member.is_admin and member.name == "Chloé Roy"
    assert member.password_hash.startswith("$argon2id$")
    duplicate = portail(
        tmp_path,
        url,
        "users",
        "create",
        "chloe@EXAMPLE.org",
        "--name",
        "Autre",
        "--password-stdin",
        stdin="un autre mot de passe\n",
    )
    assert duplicate.returncode != 0
    line = one_line(duplicate.stderr)
    assert "Un compte existe déjà" in line and "already exists" in line
    assert duplicate.stdout == ""
    listing = portail(tmp_path, url, "users", "list")
    assert listing.returncode == 0
    assert re.match(r"Chloe@example\.org\tChloé Roy\tadmin,verified\t\d{4}-", one_line(listing.stdout))
    as_json = json.loads(portail(tmp_path, url, "users", "list", "--json").stdout)
    assert [m["email"] for m in as_json] == ["Chloe@example.org"]


def test_users_create_refuses_a_weak_or_missing_password(tmp_path: Path, sqlite_url: str) -> None:
    weak = portail(
        tmp_path,
        sqlite_url,
        "users",
        "create",
        "a@example.org",
        "--name",
        "A",
        "--password-stdin",
        stdin="password123\n",
    )
    assert weak.returncode == 1
    assert "trop courant" in one_line(weak.stderr) and "too common" in weak.stderr
    missing = portail(tmp_path, sqlite_url, "users", "create", "a@example.org", "--name", "A")
    assert missing.returncode == 1 and "--password-stdin" in one_line(missing.stderr)
    invalid = portail(
        tmp_path,
        sqlite_url,
        "users",
        "create",
        "nope",
        "--name",
        "A",
        "--password-stdin",
        stdin="un mot de passe solide\n",
    )
    assert invalid.returncode == 1 and "Invalid email address" in one_line(invalid.stderr)
    assert json.loads(portail(tmp_path, sqlite_url, "users", "list", "--json").stdout) == []


def test_users_disable_ends_the_members_sessions(tmp_path: Path, settings: Settings) -> None:
    url = settings.database_url
    portail(
        tmp_path,
        url,
        "users",
        "create",
        "dan@example.org",
        "--name",
        "Dan",
        "--password-stdin",
        stdin="un mot de passe solide\n",
    )
    member = db_call(settings, lambda s: s.exec(select(Member)).one())
    db_call(settings, lambda s: [sessions.open_session(s, member) for _ in range(2)])
    disabled = portail(tmp_path, url, "users", "disable", "DAN@example.org", "--reason", "test")
    assert disabled.returncode == 0, disabled.stderr
    assert "disabled" in one_line(disabled.stdout)
    rows = db_call(settings, lambda s: list(s.exec(select(LoginSession))))
    assert [r.end_reason for r in rows] == ["disabled", "disabled"]
    assert db_call(settings, lambda s: s.get(Member, member.id)).disabled_at is not None
    assert "disabled" in portail(tmp_path, url, "users", "list").stdout
    unknown = portail(tmp_path, url, "users", "disable", "nobody@example.org")
    assert unknown.returncode == 1 and "nobody@example.org" in one_line(unknown.stderr)


def test_db_upgrade_creates_a_fresh_database(tmp_path: Path) -> None:
    done = portail(tmp_path, None, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "portail.db").exists()
    assert "up to date" in one_line(done.stdout)
    assert portail(tmp_path, None, "db", "upgrade").returncode == 0  # idempotent


@pytest.mark.parametrize(
    ("command", "env", "named"),
    [
        ("serve", {"PORTAIL_ISSUER": "not-a-url"}, "issuer"),
        ("db", {"PORTAIL_SESSION_IDLE_MINUTES": "soon"}, "session_idle_minutes"),
        ("users", {"PORTAIL_FAVOURITE_COLOUR": "green"}, "PORTAIL_FAVOURITE_COLOUR"),
        ("serve", {"PORTAIL_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/portail"}, "database_url"),
        ("db", {"PORTAIL_DATABASE_URL": "oracle://db"}, "database_url"),
        ("db", {"PORTAIL_SMTP_URL": "smtp://[unclosed"}, "smtp_url"),
        ("db", {"PORTAIL_DATABASE_URL": "sqlite:////proc/no-such-folder/portail.db"}, "/proc/no-such-folder"),
        ("serve", {"PORTAIL_VAR_DIR": "/proc/no-such-folder"}, "/proc/no-such-folder"),
    ],
)
def test_configuration_errors_give_one_line_and_exit_2(
    tmp_path: Path, command: str, env: dict[str, str], named: str
) -> None:
    args = {"serve": ["serve", "--port", str(free_port())], "db": ["db", "upgrade"], "users": ["users", "list"]}[
        command
    ]
    result = portail(tmp_path, None, *args, **env)
    assert result.returncode == 2, result.stderr
    assert named in one_line(result.stderr)
    assert "Traceback" not in result.stderr


def _start_server(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portail.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=cli_env(
            tmp_path, None, PORTAIL_CREATE_ADMIN_ON_FIRST_RUN="true", PORTAIL_ISSUER=f"http://localhost:{port}"
        ),
    )


def _wait_for_http(url: str, process: subprocess.Popen[str], seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with {process.returncode}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def test_serve_creates_the_admin_once_and_answers_http(tmp_path: Path) -> None:
    port = free_port()
    first = _start_server(tmp_path, port)
    try:
        page = _wait_for_http(f"http://127.0.0.1:{port}/login", first)
        assert page.status_code == 200 and "Se connecter à En commun" in page.text
    finally:
        output = _stop(first)
    email = re.search(r"courriel / email\s*:\s*(\S+)", output)
    password = re.search(r"mot de passe / password\s*:\s*(\S+)", output)
    assert email and password, output
    assert email.group(1) == "admin@portail.localhost"
    second = _start_server(tmp_path, port)
    try:
        assert _wait_for_http(f"http://127.0.0.1:{port}/login", second).status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            page = browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            logged = browser.post(
                "/login", data={"email": email.group(1), "password": password.group(1), "csrf_token": token.group(1)}
            )
            assert logged.status_code == 303 and "portail_session" in logged.headers["set-cookie"]
    finally:
        again = _stop(second)
    assert password.group(1) not in again and "administrator created" not in again


def test_serve_on_another_port_without_an_issuer_announces_and_signs_for_that_port(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "portail.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path, None),
    )
    try:
        discovery = _wait_for_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration", process)
        assert discovery.json()["issuer"] == f"http://127.0.0.1:{port}"
    finally:
        output = _stop(process)
    assert f"issuer not configured: http://127.0.0.1:{port}" in output
