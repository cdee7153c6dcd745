"""A built wheel installs and serves every page from an empty folder.

The wheel is built from this checkout and installed (without dependencies) into a fresh virtual
environment whose only other path is the project environment's ``site-packages``, added as a plain
path entry: the editable install of the checkout is therefore invisible, and Portail is imported
from the wheel alone. ``portail serve`` then runs in an empty temporary folder (no
``instances.toml``, no ``var/``) and must serve its pages, static files and migrations from the
package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]


def build_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(into), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = into.glob("portail-*.whl")
    return wheel


def fresh_environment(folder: Path, wheel: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The project's dependencies, but not its editable checkout (a plain path entry runs no .pth file).
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--ignore-installed",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder / "bin" / "portail"


def test_wheel_serves_every_page_from_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    portail = fresh_environment(tmp_path / "env", wheel)
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAIL_", "PYTHON"))}
    env["PORTAIL_ISSUER"] = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(portail), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=empty,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text())
        output = log.read_text()
        assert "le registre démarre vide / No instances file" in output, output
        assert "Traceback" not in output
        imported = subprocess.run(
            [str(portail.with_name("python")), "-c", "import portail; print(portail.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=empty,
            env=env,  # the server's environment (no PYTHONPATH pointing at a checkout)
        ).stdout
        assert str(tmp_path / "env") in imported, imported
        for path in (
            "/",
            "/login",
            "/signup",
            "/federation",
            "/privacy",
            "/terms",
            "/.well-known/openid-configuration",
        ):
            response = httpx.get(base + path, timeout=10, follow_redirects=True)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert "<html" in httpx.get(f"{base}/login", timeout=10).text
        css = httpx.get(f"{base}/static/portail.css", timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        assert (empty / "var" / "portail.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
