"""Two nodes starting at once on a new PostgreSQL database: one migrates, the other waits, both start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.journeys.conftest import portail_command


@pytest.fixture
def environments(tmp_path: Path, fresh_postgres: str) -> Iterator[list[dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_") or k.startswith("PORTAIL_TEST_")}
    base["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[3]), os.environ.get("PYTHONPATH", "")])
    envs = []
    for name in ("a", "b"):
        envs.append({**base, "PORTAIL_DATABASE_URL": fresh_postgres, "PORTAIL_VAR_DIR": str(tmp_path / name)})
    yield envs


def test_two_nodes_upgrading_a_new_database_at_once_both_succeed(
    environments: list[dict[str, str]],
    fresh_postgres: str,
) -> None:
    started = [
        subprocess.Popen(
            [*portail_command(), "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for env in environments
    ]
    outputs = [process.communicate(timeout=180)[0] for process in started]
    assert [process.returncode for process in started] == [0, 0], outputs
    engine = sa.create_engine(fresh_postgres)
    with engine.connect() as conn:
        heads = conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one()
    engine.dispose()
    assert heads >= 1
