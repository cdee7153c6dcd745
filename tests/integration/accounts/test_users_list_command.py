"""``portail users list`` streams members in keyset batches: memory stays flat however many there
are, JSON output is one valid array written item by item, and a list cut by the default limit says so."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portail import cli
from portail import db as database
from portail.accounts.models import Member
from portail.config import Settings
from tests.conftest import db_call
from tests.integration.test_cli import portail

EMAILS = [f"membre{n:02d}@example.org" for n in range(1, 24)]  # 23: not a multiple of any batch below


def _members(db: Session, emails: list[str] = EMAILS) -> None:
    db.execute(
        insert(Member),
        [
            {
                "public_id": f"{n:032d}",
                "email": email,
                "email_key": email,
                "name": f"Membre {n}",
                "password_hash": "x",
                "locale": "fr-CA",
                "is_admin": n == 1,
                "roles": "",
                "terms_version": "",
                "privacy_version": "",
            }
            for n, email in enumerate(emails, start=1)
        ],
    )


@pytest.fixture
def listed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """23 members in the test database, and the ``portail`` command pointed at it."""
    db_call(settings, _members)
    monkeypatch.setenv("PORTAIL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PORTAIL_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("PORTAIL_INSTANCES_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PORTAIL_CONFIG", str(tmp_path / "absent.toml"))
    return settings


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert cli.main(["users", "list", *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize("batch", ["1", "5", "23", "1000"])
def test_json_is_one_array_of_every_member_once_across_batches(
    listed: Settings, capsys: pytest.CaptureFixture[str], batch: str
) -> None:
    out, err = _run(capsys, "--json", "--batch", batch)
    items = json.loads(out)
    assert [item["email"] for item in items] == EMAILS and err == ""
    assert items[0] == {**items[0], "name": "Membre 1", "admin": True, "verified": False, "disabled": False}
    assert json.loads(_run(capsys, "--json", "--limit", "10", "--batch", "5")[0]) == items[:10]


def test_offset_and_limit_cut_the_keyset_walk(listed: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    out, _err = _run(capsys, "--offset", "3", "--limit", "7", "--batch", "4")
    assert [line.split("\t")[0] for line in out.splitlines()] == EMAILS[3:10]
    assert out.splitlines()[0].split("\t")[2] == "-"
    assert _run(capsys, "--offset", "30", "--json")[0] == "[]\n"
    assert json.loads(_run(capsys, "--json", "--limit", "0")[0]) == []


def test_a_list_cut_by_the_default_limit_says_so_in_french_then_english(
    listed: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "DEFAULT_LIST_LIMIT", 20)
    out, err = _run(capsys, "--json", "--batch", "6")
    assert len(json.loads(out)) == 20
    assert err.strip() == (
        "Liste limitée à 20 membres ; --limit N pour plus. / List limited to 20 members; use --limit N for more."
    )
    assert _run(capsys, "--json", "--limit", "20")[1] == ""  # asked for 20: nothing to say
    monkeypatch.setattr(cli, "DEFAULT_LIST_LIMIT", 23)
    assert _run(capsys, "--json", "--batch", "6")[1] == ""  # exactly every member: nothing was cut


def test_a_negative_limit_is_refused(listed: Settings) -> None:
    assert cli.main(["users", "list", "--limit", "-1"]) == 2


def test_lines_are_written_as_their_batch_arrives(
    listed: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each write happens after its own batch's SELECT and before the next one: nothing is gathered."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    class Recorder(io.StringIO):
        seen: list[int] = []

        def write(self, text: str) -> int:
            self.seen.append(len(statements))
            return super().write(text)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        monkeypatch.setattr("sys.stdout", Recorder())
        assert cli.main(["users", "list", "--json", "--batch", "5"]) == 0
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len(set(Recorder.seen)) >= 5  # 23 members by 5: written between five SELECTs


def test_the_real_command_stops_at_a_thousand_and_says_so(tmp_path: Path, sqlite_url: str) -> None:
    settings_db = database.make_engine(sqlite_url)
    with Session(settings_db) as s:
        _members(s, [f"m{n:04d}@example.org" for n in range(1001)])
        s.commit()
    settings_db.dispose()
    done = portail(tmp_path, sqlite_url, "users", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 1000
    assert "Liste limitée à 1 000 membres" in done.stderr and "List limited to 1,000 members" in done.stderr
