"""A Portail deployed as an operator deploys it, for the journey tests.

Nothing here writes a row or builds a client by hand. A :class:`Deployment` is a temporary folder
with an ``instances.toml``, settings in the environment (``PORTAIL_*``), the ``portail`` command
line run as a subprocess, and ``portail serve`` running as a real server on a loopback port. Tests
act through :class:`Visitor` (a browser-like HTTP client that fills the HTML forms with their CSRF
token), the public JSON APIs, the CLI, and the mail written to the outbox.

Two settings used here exist for tests only and are said so in the README: ``allow_http_instances``
and ``allow_private_addresses`` let instances and hoster nodes live on 127.0.0.1 over plain HTTP.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import PASSWORD, free_port
from tests.interop.forms import treat_loopback_as_secure

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
ADMIN_RE = re.compile(r"courriel / email\s*:\s*(\S+)\s*\n.*mot de passe / password\s*:\s*(\S+)")


def portail_command() -> list[str]:
    """The ``portail`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("portail")
    if script.exists():
        return [str(script)]
    found = shutil.which("portail")
    assert found, "the portail command is not installed"
    return [found]


class Visitor:
    """A person with a browser: cookies, redirects followed by hand, forms posted with their CSRF token."""

    def __init__(self, base_url: str, locale: str = "fr-CA") -> None:
        self.base_url = base_url
        self.http = treat_loopback_as_secure(
            httpx.Client(base_url=base_url, follow_redirects=False, timeout=30.0, headers={"Accept-Language": locale})
        )  # a tool on loopback (Synapse) may mark its cookies Secure over plain http: a browser still sends them

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)

    def follow(self, response: httpx.Response, limit: int = 10) -> httpx.Response:
        """Follow redirects that stay on Portail, as a browser would (at most ``limit``)."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers["location"]
            if location.startswith("http") and not location.startswith(self.base_url):
                return response
            response = self.http.get(location)
        raise AssertionError(f"more than {limit} redirects (last: {response.request.url})")

    def submit(
        self, page_url: str, action: str | None = None, data: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Open ``page_url``, then post ``data`` with the page's CSRF token to ``action`` (default: the page)."""
        page = self.http.get(page_url)
        assert page.status_code == 200, (page_url, page.status_code, page.text[:500])
        tokens = CSRF_RE.findall(page.text)
        assert tokens, f"no form with a CSRF token on {page_url}"
        return self.http.post(action or page_url, data={"csrf_token": unescape(tokens[0]), **(data or {})}, **kwargs)

    def login(self, email: str, password: str = PASSWORD, next_url: str = "/") -> httpx.Response:
        response = self.submit("/login", data={"email": email, "password": password, "next": next_url})
        assert response.status_code == 303, response.text[:1000]
        return response

    def enrol_authenticator_app(self) -> tuple[str, list[str]]:
        """Enrol an authenticator app from the security page, as a member does (the code computed from
        the secret the page shows); returns the secret and the ten recovery codes shown once."""
        started = self.submit("/account/security", "/account/security/totp-start")
        assert started.status_code == 303, started.text[:500]
        page = self.http.get("/account/security")
        shown = re.search(r"Clé : ([A-Z2-7 ]{16,})", page.text)
        assert shown, page.text[:1000]
        secret = shown.group(1).replace(" ", "")
        code = pyotp.TOTP(secret).now()
        confirmed = self.submit("/account/security", "/account/security/totp-confirm", data={"code": code})
        assert confirmed.status_code == 200, confirmed.text[:1000]
        return secret, re.findall(r"<code>([a-z0-9-]{19})</code>", confirmed.text)

    def second_step(self, code: str, next_url: str = "/") -> httpx.Response:
        """Answer the second step of a login with an authenticator or recovery code."""
        response = self.submit(f"/login/second-step?next={next_url}", data={"code": code, "next": next_url})
        assert response.status_code == 303, response.text[:1000]
        return response

    def close(self) -> None:
        self.http.close()


class Deployment:
    """One Portail as deployed: its folder, its ``instances.toml``, its CLI and its server."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        self.root = root
        self.var = root / "var"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.instances_file = root / "instances.toml"
        self.env: dict[str, str] = {
            k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_") or k.startswith("PORTAIL_TEST_")
        }
        self.env.update(
            {
                "PORTAIL_ISSUER": self.base_url,
                "PORTAIL_VAR_DIR": str(self.var),
                "PORTAIL_INSTANCES_FILE": str(self.instances_file),
                "PORTAIL_ALLOW_HTTP_INSTANCES": "true",
                "PORTAIL_ALLOW_PRIVATE_ADDRESSES": "true",
                "PYTHONPATH": os.pathsep.join(
                    [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
                ),
            }
        )
        if database_url:
            self.env["PORTAIL_DATABASE_URL"] = database_url
        self.server: subprocess.Popen[str] | None = None
        self.server_log = root / "serve.log"
        self.admin_email = ""
        self.admin_password = ""
        self.admin_recovery_codes: list[str] = []
        self.visitors: list[Visitor] = []

    # -------------------------------------------------------------- configuration and CLI

    def write_instances(self, text: str) -> None:
        self.instances_file.write_text(text, encoding="utf-8")

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``portail ARGS`` in the deployment's folder, as an operator would."""
        done = subprocess.run(
            [*portail_command(), *args],
            cwd=self.root,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"portail {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    # -------------------------------------------------------------- the server

    def start(self, *serve_args: str, workers: int = 1) -> None:
        """``portail serve`` on the deployment's port (``--workers``, plus ``serve_args``); waits until
        discovery answers."""
        assert self.server is None
        log = self.server_log.open("a", encoding="utf-8")
        workers_args = ("--workers", str(workers)) if workers != 1 else ()
        self.server = subprocess.Popen(
            [*portail_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *workers_args, *serve_args],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise AssertionError(f"portail serve stopped:\n{self.server_log.read_text()}")
            try:
                found = httpx.get(f"{self.base_url}/.well-known/openid-configuration", timeout=2)
                if found.status_code == 200 and found.json().get("issuer") == self.env["PORTAIL_ISSUER"]:
                    break  # this Portail, not another test server that took the port
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"portail serve did not answer:\n{self.server_log.read_text()}")
        match = ADMIN_RE.search(self.server_log.read_text(encoding="utf-8"))
        if match and not self.admin_email:
            self.admin_email, self.admin_password = match.group(1), match.group(2)

    def kill(self) -> None:
        """Stop the server as a crash would (SIGKILL: no shutdown, no lock released)."""
        if self.server is not None:
            self.server.kill()
            self.server.wait()
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def visitor(self, locale: str = "fr-CA") -> Visitor:
        visitor = Visitor(self.base_url, locale)
        self.visitors.append(visitor)
        return visitor

    def admin(self) -> Visitor:
        """The administrator printed at first start, logged in with a second factor, as the setting
        ``mfa_required_for_admins`` (on by default) requires: the first time, they enrol an
        authenticator app from the security page; later logins answer the second step with one of
        the recovery codes shown then."""
        assert self.admin_email, "no administrator was printed at first start"
        visitor = self.visitor()
        response = visitor.login(self.admin_email, self.admin_password)
        if response.headers["location"].startswith("/login/second-step"):
            assert self.admin_recovery_codes, "no recovery code left for the administrator"
            visitor.second_step(self.admin_recovery_codes.pop())
        elif not self.admin_recovery_codes:
            _secret, self.admin_recovery_codes = visitor.enrol_authenticator_app()
        return visitor

    # -------------------------------------------------------------- mail

    def outbox(self) -> list[Message]:
        folder = self.var / "outbox"
        if not folder.exists():
            return []
        files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]

    def mails_to(self, address: str) -> list[Message]:
        return [m for m in self.outbox() if address.lower() in str(m["To"]).lower()]

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails_to(address)
            if len(mails) >= count:
                return mails
            time.sleep(0.1)
        raise AssertionError(f"{count} mail(s) to {address} expected, found {len(self.mails_to(address))}")

    def close(self) -> None:
        for visitor in self.visitors:
            visitor.close()
        self.stop()


def mail_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def links_in(message: Message) -> list[str]:
    return re.findall(r"https?://\S+", mail_text(message))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A fresh deployment on SQLite (the embedded default). Write ``instances.toml`` then ``start()``."""
    deployed = Deployment(tmp_path)
    try:
        yield deployed
    finally:
        deployed.close()


def sign_up(
    deployment: Deployment, email_address: str, name: str = "Alice Tremblay", password: str = PASSWORD
) -> Visitor:
    """A newcomer signs up on the page and follows the link mailed to them; returns their browser."""
    visitor = deployment.visitor()
    page = visitor.get("/signup")
    assert page.status_code == 200, page.text[:500]
    fields = {"email": email_address, "name": name, "password": password, "password_confirm": password}
    for checkbox in re.findall(r'<input[^>]*type="checkbox"[^>]*name="([^"]+)"', page.text):
        fields.setdefault(checkbox, "on")
    response = visitor.submit("/signup", data=fields)
    assert response.status_code in (200, 303), response.text[:1000]
    mail = deployment.wait_for_mail(email_address)[-1]
    link = next(link for link in links_in(mail) if "verif" in link)
    confirmed = visitor.follow(visitor.get(link.replace(deployment.base_url, "")))
    assert confirmed.status_code == 200, confirmed.text[:1000]
    return visitor
