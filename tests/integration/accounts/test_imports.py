"""``accounts.imports`` against the real database (SQLite and PostgreSQL): batches, idempotence,
organizations, a batch that loses a race, and paced invitations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import bcrypt
from sqlmodel import Session, select

from portail import db as database
from portail.accounts import imports, newcomers
from portail.accounts.models import Member, Membership, Organization
from portail.config import Settings
from tests.conftest import db_call, outbox


def _csv(tmp_path: Path, lines: list[str], header: str = "email,name,password_hash,organizations") -> Path:
    path = tmp_path / "members.csv"
    path.write_text("\ufeff" + header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _add_organization(db: Session) -> None:
    db.add(Organization(slug="tiess", name="TIESS"))


def test_batches_go_through_and_a_second_run_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    db_call(settings, _add_organization)
    made = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()
    lines = [f"m{i}@example.org,M {i},{made if i % 2 else ''},{'tiess' if i % 3 == 0 else ''}" for i in range(1203)]
    path = _csv(tmp_path, lines)
    handle = database.Database(settings)
    seen: list[tuple[int, int]] = []
    try:
        first = imports.import_file(handle, path, progress=lambda done, total: seen.append((done, total)))
        second = imports.import_file(handle, path)
    finally:
        handle.dispose()
    assert (first.created, first.without_password, first.refused) == (1203, 602, [])
    assert [done for done, _total in seen] == [500, 1000, 1203] and seen[-1][1] == 1203
    assert second.created == 0 and len(second.existing) == 1203

    def counts(db: Session) -> tuple[int, int]:
        return len(db.exec(select(Member.id)).all()), len(db.exec(select(Membership.id)).all())

    assert db_call(settings, counts) == (1203, 401)


def test_dry_run_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    handle = database.Database(settings)
    try:
        report = imports.import_file(handle, _csv(tmp_path, ["a@example.org,A,,", "b@example.org,B,,"]), dry_run=True)
    finally:
        handle.dispose()
    assert report.created == 2 and report.to_invite == []
    assert db_call(settings, lambda db: db.exec(select(Member.id)).all()) == []


def test_a_batch_that_loses_a_race_is_replayed(settings: Settings, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same address is created by someone else between the batch's check and its insert."""
    real = newcomers._new_member
    raced: list[str] = []

    def racing(candidate: newcomers.Candidate, now: dt.datetime) -> Member:
        if not raced:
            raced.append(candidate.email)
            db_call(settings, lambda other: other.add(real(candidate, now)))
        return real(candidate, now)

    monkeypatch.setattr(newcomers, "_new_member", racing)
    handle = database.Database(settings)
    try:
        report = imports.import_file(handle, _csv(tmp_path, ["a@example.org,A,,", "b@example.org,B,,"]))
    finally:
        handle.dispose()
    assert raced == ["a@example.org"]
    assert report.created == 1 and report.existing == [(2, "a@example.org")]
    assert len(db_call(settings, lambda db: db.exec(select(Member.id)).all())) == 2


def test_invitations_are_paced_per_minute(settings: Settings, tmp_path: Path) -> None:
    handle = database.Database(settings)
    waits: list[float] = []
    try:
        report = imports.import_file(handle, _csv(tmp_path, [f"i{i}@example.org,I {i},," for i in range(5)]))
        sent = newcomers.send_invitations(
            handle, settings, report.to_invite, per_minute=2, sleep=waits.append, clock=lambda: 100.0
        )
    finally:
        handle.dispose()
    assert sent == 5 and waits == [60.0, 60.0]
    mails = outbox(settings)
    assert len(mails) == 5 and all("/password/reset?token=" in m.get_body().get_content() for m in mails)  # type: ignore[union-attr]
