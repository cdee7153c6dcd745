"""The Alembic migrations create exactly the tables the SQLModel models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from portail import db as database
from portail.models import metadata


def test_migrations_match_the_models(sqlite_template: Path) -> None:
    engine = database.make_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'twice.db'}")
    database.upgrade(engine)
    database.upgrade(engine)
    with engine.connect() as connection:
        heads = set(MigrationContext.configure(connection).get_current_heads())
    engine.dispose()
    script = ScriptDirectory.from_config(database.alembic_config("sqlite://"))
    applied = {rev.revision for rev in script.revision_map.iterate_revisions(tuple(heads), "base")}
    assert applied == {rev.revision for rev in script.walk_revisions()}
