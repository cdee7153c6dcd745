"""Run a real Matrix Synapse homeserver on loopback, for interoperability tests.

This module has no pytest fixtures: test files (or a conftest) wrap it in fixtures of the scope they need.
Typical use::

    python = ensure_synapse_venv(PROJECT_ROOT)
    with SynapseServer(python, tmp_path, oidc_provider={...}, sso_client_whitelist=[...]) as hs:
        alice = hs.register_user("alice", "s3cret", admin=True)
        assert hs.whoami(alice.access_token) == 200

Installation
    Synapse pins its own dependency versions (authlib, Twisted, pydantic...), so it lives in a virtualenv of
    its own, ``<root>/var/synapse-venv``, created on first use by :func:`ensure_synapse_venv` with
    ``pip install "matrix-synapse[oidc]"`` (about 30 s on 2 cores, ~250 MB; the ``oidc`` extra is needed
    for authlib). Later calls only check ``bin/python -c "import synapse, authlib"`` (~0.4 s).
    ``PORTAIL_TEST_SYNAPSE_PYTHON`` may name the Python of an existing Synapse install instead.

Server
    :class:`SynapseServer` generates a config with ``--generate-config`` (signing key, secrets), then merges
    into ``homeserver.yaml``: a single plain-HTTP listener on ``127.0.0.1:<port>`` (client + federation,
    ``x_forwarded``), ``public_baseurl: http://localhost:<port>/``, SQLite in the work dir, no trusted key
    servers, no stats, registration closed (users are made through the shared-secret admin API),
    ``bcrypt_rounds: 4`` and very generous rate limits, plus ``sso.client_whitelist`` and the
    ``oidc_providers`` entry when given. Synapse's log goes to ``<workdir>/homeserver.log`` (unbuffered),
    its stdout/stderr to ``<workdir>/synapse.out``; a start failure raises :class:`SynapseError` carrying
    the tail of both.

OIDC caveats (see shared/reference/integrations.md sections 0 and 3)
    * Synapse validates the provider metadata with authlib, which demands HTTPS except for
      ``http://localhost:<port>`` and ``http://127.0.0.1:<port>`` (the port is required, and the issuer must
      equal the discovered ``issuer`` exactly, trailing slash included). Any other plain-HTTP issuer needs
      ``skip_verification: true`` in the provider entry. Metadata problems do not stop Synapse from starting:
      they are logged at CRITICAL ("Login may be broken!"), so look in ``homeserver.log``.
    * Synapse prefixes the ``idp_id``: the SSO redirect is
      ``/_matrix/client/v3/login/sso/redirect/oidc-<idp_id>?redirectUrl=...`` (see :meth:`sso_redirect_url`).
    * The redirect URI to register at the provider is :attr:`SynapseServer.oidc_callback_url`.
    * Synapse requires ``sid`` in back-channel logout tokens (``sub`` alone is rejected), and links sessions
      through the ``sid`` of the ID token, so the provider must put ``sid`` in both. The back-channel
      endpoint is :attr:`SynapseServer.backchannel_logout_url` (with ``backchannel_logout_enabled: true``).
    * Profile claims are read from the ID token unless ``user_profile_method: userinfo_endpoint``.
    * Synapse reaches loopback providers through its proxied (not IP-blocklisted) HTTP client, so no
      ``ip_range_whitelist`` is needed for OIDC.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import hmac
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import httpx
import yaml

from tests.conftest import free_port

__all__ = [
    "SynapseError",
    "SynapseServer",
    "SynapseUser",
    "ensure_synapse_venv",
    "free_port",
]

SYNAPSE_REQUIREMENT = "matrix-synapse[oidc]"
"""What :func:`ensure_synapse_venv` installs (a pip requirement specifier). The ``oidc`` extra brings
authlib: without it Synapse refuses any ``oidc_providers`` config."""

_PROBE = "import synapse, authlib"

PYTHON_ENV_VAR = "PORTAIL_TEST_SYNAPSE_PYTHON"

_GENEROUS_RATE = {"per_second": 1000, "burst_count": 10000}


class SynapseError(RuntimeError):
    """Synapse could not be installed, configured or started, or an API call failed unexpectedly."""


@dataclass(frozen=True)
class SynapseUser:
    """A logged-in Matrix user: what registration and login return."""

    user_id: str
    access_token: str
    device_id: str | None = None


def _imports_synapse(python: Path) -> bool:
    if not python.exists():
        return False
    result = subprocess.run(
        [str(python), "-c", _PROBE],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def ensure_synapse_venv(root: Path, requirement: str = SYNAPSE_REQUIREMENT) -> Path:
    """Return the Python of a virtualenv in which ``import synapse, authlib`` works, installing if needed.

    The virtualenv is ``root/var/synapse-venv``, separate from the project's because Synapse pins its own
    dependency versions. When Synapse already imports this is only a ~0.3 s check. Otherwise it creates the
    virtualenv with the running interpreter and runs ``pip install <requirement>`` (progress line on stderr,
    pip's output in ``root/var/synapse-venv-install.log``). A file lock serialises concurrent callers
    (e.g. pytest-xdist workers). If the environment variable ``PORTAIL_TEST_SYNAPSE_PYTHON`` is set, that
    interpreter is checked and returned instead.
    """
    override = os.environ.get(PYTHON_ENV_VAR)
    if override:
        python = Path(override)
        if not _imports_synapse(python):
            raise SynapseError(f"{PYTHON_ENV_VAR}={override} cannot import synapse and authlib")
        return python

    var = root / "var"
    venv = var / "synapse-venv"
    python = venv / "bin" / "python"
    if _imports_synapse(python):
        return python

    var.mkdir(parents=True, exist_ok=True)
    with open(var / "synapse-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _imports_synapse(python):  # another process installed it while we waited
            return python
        log_path = var / "synapse-venv-install.log"
        print(
            f"[synapse_harness] installing {requirement} into {venv} (takes ~30 s; log: {log_path})",
            file=sys.stderr,
            flush=True,
        )
        started = time.monotonic()
        with open(log_path, "w") as log:
            steps = []
            if not python.exists():
                steps.append([sys.executable, "-m", "venv", str(venv)])
            steps.append(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar=off",
                    requirement,
                ]
            )
            for cmd in steps:
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                result = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
                )
                if result.returncode != 0:
                    raise SynapseError(f"{' '.join(cmd)} failed with exit code {result.returncode}:\n{_tail(log_path)}")
        if not _imports_synapse(python):
            raise SynapseError(f"synapse still does not import from {python}; see {log_path}")
        print(
            f"[synapse_harness] synapse installed in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return python


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class SynapseServer:
    """One Synapse homeserver process, configured for tests, listening on ``127.0.0.1:<port>``.

    ``oidc_provider`` is a single ``oidc_providers`` entry (``idp_id``, ``issuer``, ``client_id``,
    ``client_secret``, ``scopes``, ``backchannel_logout_enabled``, ``user_mapping_provider``...), used as is.
    ``extra_config`` is deep-merged last into ``homeserver.yaml`` (dicts merged, other values replaced).
    Use as a context manager, or call :meth:`start` and :meth:`stop` (both idempotent).
    """

    def __init__(
        self,
        python: Path,
        workdir: Path,
        port: int | None = None,
        *,
        oidc_provider: Mapping[str, Any] | None = None,
        sso_client_whitelist: Sequence[str] = (),
        extra_config: Mapping[str, Any] | None = None,
        server_name: str = "localhost",
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.python = python
        self.workdir = workdir.resolve()
        self.port = port if port is not None else free_port()
        self.server_name = server_name
        self.oidc_provider = dict(oidc_provider) if oidc_provider is not None else None
        self.sso_client_whitelist = list(sso_client_whitelist)
        self.extra_config = dict(extra_config or {})
        self.startup_timeout = startup_timeout
        self.extra_env = dict(env or {})
        self.registration_shared_secret = secrets.token_urlsafe(32)
        self.config_path = self.workdir / "homeserver.yaml"
        self.log_path = self.workdir / "homeserver.log"
        self.output_path = self.workdir / "synapse.out"
        self.config: dict[str, Any] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._http: httpx.Client | None = None

    # ----------------------------------------------------------------- addresses

    @property
    def public_baseurl(self) -> str:
        """The URL Synapse advertises (``http://localhost:<port>/``, trailing slash included)."""
        return f"http://localhost:{self.port}/"

    @property
    def base_url(self) -> str:
        """Where to reach the listener directly, without the ``localhost`` → ``::1`` detour."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def oidc_callback_url(self) -> str:
        """The redirect URI to register at the OpenID provider."""
        return f"{self.public_baseurl}_synapse/client/oidc/callback"

    @property
    def backchannel_logout_url(self) -> str:
        """Where the provider POSTs ``logout_token`` (needs ``backchannel_logout_enabled: true``)."""
        return f"{self.public_baseurl}_synapse/client/oidc/backchannel_logout"

    def sso_redirect_url(self, idp_id: str, redirect_url: str) -> str:
        """The URL a browser opens to log in to Synapse through the provider ``idp_id`` (unprefixed)."""
        return (
            f"{self.public_baseurl}_matrix/client/v3/login/sso/redirect/oidc-{quote(idp_id, safe='')}"
            f"?redirectUrl={quote(redirect_url, safe='')}"
        )

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def http(self) -> httpx.Client:
        """An ``httpx.Client`` bound to :attr:`base_url`, open between :meth:`start` and :meth:`stop`."""
        if self._http is None:
            raise SynapseError("Synapse is not started")
        return self._http

    # ----------------------------------------------------------------- config

    def _generate_config(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            cmd = [
                str(self.python),
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                self.server_name,
                "--config-path",
                str(self.config_path),
                "--data-directory",
                str(self.workdir),
                "--config-directory",
                str(self.workdir),
                "--generate-config",
                "--report-stats=no",
            ]
            result = subprocess.run(
                cmd,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise SynapseError(
                    f"synapse --generate-config failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                )
        loaded = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise SynapseError(f"{self.config_path} is not a YAML mapping")
        return loaded

    def _log_config(self) -> dict[str, Any]:
        # Plain, unbuffered file handler: the generated one buffers INFO lines, which hides the tail we
        # print when startup fails.
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": ("%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s")
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse.storage.SQL": {"level": "INFO"}, "twisted": {"level": "WARNING"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    def build_config(self) -> dict[str, Any]:
        """Generate (once) and rewrite ``homeserver.yaml``; returns the config written."""
        config = self._generate_config()
        log_config_path = self.workdir / f"{self.server_name}.log.config"
        log_config_path.write_text(yaml.safe_dump(self._log_config(), sort_keys=False), encoding="utf-8")
        rate = dict(_GENEROUS_RATE)
        config.update(
            {
                "server_name": self.server_name,
                "public_baseurl": self.public_baseurl,
                "pid_file": str(self.workdir / "homeserver.pid"),
                "listeners": [
                    {
                        "port": self.port,
                        "bind_addresses": ["127.0.0.1"],
                        "type": "http",
                        "tls": False,
                        "x_forwarded": True,
                        "resources": [{"names": ["client", "federation"], "compress": False}],
                    }
                ],
                "database": {
                    "name": "sqlite3",
                    "args": {"database": str(self.workdir / "homeserver.db")},
                },
                "media_store_path": str(self.workdir / "media_store"),
                "signing_key_path": str(self.workdir / f"{self.server_name}.signing.key"),
                "log_config": str(log_config_path),
                "report_stats": False,
                "enable_metrics": False,
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "registration_shared_secret": self.registration_shared_secret,
                "enable_registration": False,
                "bcrypt_rounds": 4,
                "url_preview_enabled": False,
                "rc_message": rate,
                "rc_registration": rate,
                "rc_registration_token_validity": rate,
                "rc_login": {"address": rate, "account": rate, "failed_attempts": rate},
                "rc_admin_redaction": rate,
                "rc_joins": {"local": rate, "remote": rate},
                "rc_joins_per_room": rate,
                "rc_3pid_validation": rate,
                "rc_invites": {"per_room": rate, "per_user": rate, "per_issuer": rate},
                "rc_third_party_invite": rate,
                "rc_room_creation": rate,
                "rc_presence": {"per_user": rate},
                "rc_delayed_event_mgmt": rate,
                "rc_reports": rate,
                "rc_media_create": rate,
                "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "reject_limit": 1000},
                "sso": {"client_whitelist": list(self.sso_client_whitelist)},
            }
        )
        if self.oidc_provider is not None:
            config["oidc_providers"] = [copy.deepcopy(self.oidc_provider)]
        else:
            config.pop("oidc_providers", None)
        _deep_merge(config, self.extra_config)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.config = config
        return config

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SynapseServer:
        """Write the config, launch Synapse and wait until ``/_matrix/client/versions`` answers 200."""
        if self.running:
            return self
        self.build_config()
        self._output = open(self.output_path, "ab")  # closed in stop()
        self._process = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.workdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=2.0) as probe:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise SynapseError(f"Synapse exited with code {code} during startup.\n{self.diagnostics()}")
                try:
                    response = probe.get("/_matrix/client/versions")
                    if response.status_code == 200:
                        return
                    last_error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise SynapseError(
                        f"Synapse did not answer on {self.base_url} within {self.startup_timeout:.0f} s "
                        f"(last: {last_error}).\n{self.diagnostics()}"
                    )
                time.sleep(0.2)

    def diagnostics(self, lines: int = 40) -> str:
        """The tails of Synapse's log and of its stdout/stderr, for error messages."""
        return (
            f"--- tail of {self.log_path} ---\n{_tail(self.log_path, lines)}\n"
            f"--- tail of {self.output_path} ---\n{_tail(self.output_path, lines)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps the process and closes files."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
        if self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> SynapseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- client-server API helpers

    def api(
        self,
        method: str,
        path: str,
        access_token: str | None = None,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """One request to Synapse (``path`` starts with ``/_matrix`` or ``/_synapse``), optionally authed."""
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        return self.http.request(method, path, headers=headers, json=json, params=params)

    def api_json(
        self,
        method: str,
        path: str,
        access_token: str | None = None,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        """Like :meth:`api`, but requires a 200 and returns the JSON object (else :class:`SynapseError`)."""
        response = self.api(method, path, access_token, json=json, params=params)
        if response.status_code != 200:
            raise SynapseError(f"{method} {path} -> {response.status_code}: {response.text}")
        body = response.json()
        if not isinstance(body, dict):
            raise SynapseError(f"{method} {path} returned non-object JSON: {body!r}")
        return body

    def register_user(
        self, localpart: str, password: str, admin: bool = False, displayname: str | None = None
    ) -> SynapseUser:
        """Create a user through the shared-secret admin API (``/_synapse/admin/v1/register``)."""
        nonce = self.api_json("GET", "/_synapse/admin/v1/register")["nonce"]
        message = b"\x00".join(
            part.encode("utf-8") for part in (nonce, localpart, password, "admin" if admin else "notadmin")
        )
        mac = hmac.new(self.registration_shared_secret.encode("utf-8"), message, hashlib.sha1)
        payload: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname is not None:
            payload["displayname"] = displayname
        body = self.api_json("POST", "/_synapse/admin/v1/register", json=payload)
        return SynapseUser(body["user_id"], body["access_token"], body.get("device_id"))

    def _login(self, payload: dict[str, Any]) -> SynapseUser:
        body = self.api_json("POST", "/_matrix/client/v3/login", json=payload)
        return SynapseUser(body["user_id"], body["access_token"], body.get("device_id"))

    def login_password(self, user: str, password: str, device_display_name: str = "synapse_harness") -> SynapseUser:
        """``m.login.password`` login; ``user`` is a localpart or a full user id."""
        return self._login(
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
                "initial_device_display_name": device_display_name,
            }
        )

    def login_token(self, login_token: str, device_display_name: str = "synapse_harness") -> SynapseUser:
        """``m.login.token`` login: exchange the ``loginToken`` an SSO redirect delivered (valid 2 min)."""
        return self._login(
            {
                "type": "m.login.token",
                "token": login_token,
                "initial_device_display_name": device_display_name,
            }
        )

    def whoami(self, access_token: str) -> int:
        """Status of ``GET /_matrix/client/v3/account/whoami``: 200 while the token is valid, else 401."""
        return self.api("GET", "/_matrix/client/v3/account/whoami", access_token).status_code

    def iter_log_lines(self) -> Iterator[str]:
        """The lines of ``homeserver.log`` so far (e.g. to look for OIDC metadata errors)."""
        with contextlib.suppress(OSError), open(self.log_path, encoding="utf-8", errors="replace") as log:
            yield from log
