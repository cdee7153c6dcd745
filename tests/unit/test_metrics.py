"""portail.metrics in multiprocess mode (what ``serve --workers N`` runs): samples in files, summed
by a scrape, and a stopped worker's live gauges dropped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portail import metrics

WORKER = """
import os
from portail import metrics
assert metrics.multiprocess()
metrics.LEADER.labels("probes").set(1)
metrics.LOGINS.labels("password", "success").inc()
print(os.getpid())
if os.environ.get("STOP"):
    metrics.process_stopped()
"""


def run_worker(folder: Path, stop: bool) -> int:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(folder), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if stop:
        env["STOP"] = "1"
    done = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def test_prepare_multiprocess_empties_the_folder_and_points_the_environment_at_it(tmp_path: Path) -> None:
    stale = tmp_path / "metrics" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    previous = os.environ.get(metrics.MULTIPROC_ENV)
    try:
        folder = metrics.prepare_multiprocess(tmp_path)
        assert folder == tmp_path / "metrics"
        assert list(folder.iterdir()) == []
        assert os.environ[metrics.MULTIPROC_ENV] == str(folder)
    finally:
        if previous is None:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
        else:
            os.environ[metrics.MULTIPROC_ENV] = previous


def test_workers_counters_add_up_and_a_stopped_worker_no_longer_leads(tmp_path: Path) -> None:
    running = run_worker(tmp_path, stop=False)
    stopped = run_worker(tmp_path, stop=True)
    names = {p.name for p in tmp_path.iterdir()}
    assert f"counter_{running}.db" in names and f"counter_{stopped}.db" in names
    assert f"gauge_livemax_{running}.db" in names
    assert f"gauge_livemax_{stopped}.db" not in names
    scrape = subprocess.run(
        [sys.executable, "-c", "from portail import metrics; print(metrics.render().decode())"],
        env={
            **os.environ,
            metrics.MULTIPROC_ENV: str(tmp_path),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'portail_logins_total{method="password",result="success"} 2.0' in scrape
    assert 'portail_background_leader{task="probes"} 1.0' in scrape
