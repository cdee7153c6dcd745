"""A database error's message names the statement, never its values (``make_engine``'s
``hide_parameters``): such messages reach the logs, and the values are token hashes, addresses, names."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from portail import db as database


def test_a_failed_statement_does_not_carry_its_values_into_the_error(tmp_path: Path) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE member (email TEXT UNIQUE)"))
        conn.execute(sa.text("INSERT INTO member VALUES (:email)"), {"email": "alice@example.org"})
    with pytest.raises(sa.exc.IntegrityError) as failed, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO member VALUES (:email)"), {"email": "alice@example.org"})
    assert "INSERT INTO member" in str(failed.value)
    assert "alice@example.org" not in str(failed.value)
    engine.dispose()
