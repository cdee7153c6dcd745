"""Log in to a real Matrix Synapse through Portail, then log out at Portail and watch Synapse
drop the Matrix session (OIDC Back-Channel Logout 1.0 §2.5, Synapse's ``backchannel_logout_enabled``).

Portail runs under uvicorn (issuer ``http://localhost:<port>``); Synapse is the PyPI homeserver
driven by ``synapse_harness``. The whole SSO journey goes over HTTP with one cookie-keeping client:
Synapse → Portail ``/authorize`` → login form → consent (allow) → Synapse callback →
``redirectUrl?loginToken=…`` → ``m.login.token``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from portail.oidc.models import BackchannelDelivery
from tests.conftest import PASSWORD, create_member
from tests.interop.conftest import LiveServer, synapse_provider
from tests.interop.forms import browser, submit, walk
from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv, free_port

pytestmark = pytest.mark.interop

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLIENT_URL = "http://127.0.0.1:9/matrix-client/"  # the Matrix client's page: never fetched


@pytest.fixture
def synapse_with_portail(
    live_portail: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SynapseServer, LiveServer]]:
    python = ensure_synapse_venv(PROJECT_ROOT)
    port = free_port()
    public = f"http://localhost:{port}/"
    provider = synapse_provider(live_portail, public, backchannel=True)
    with SynapseServer(
        python, tmp_path_factory.mktemp("synapse"), port, oidc_provider=provider, sso_client_whitelist=[CLIENT_URL]
    ) as hs:
        yield hs, live_portail


def test_synapse_logs_in_through_portail_and_is_logged_out_by_the_backchannel(
    synapse_with_portail: tuple[SynapseServer, LiveServer],
) -> None:
    hs, portail = synapse_with_portail
    member = create_member(portail.settings, "marie@example.org", "Marie Gagnon")
    with browser() as agent:
        url, page = walk(agent, hs.sso_redirect_url("portail", CLIENT_URL), CLIENT_URL)
        assert page is not None and urlsplit(url).path == "/login", (url, page and page.text[:500])
        answer = submit(agent, url, page.text, email=member.email, password=PASSWORD)
        assert answer.status_code == 303, answer.text[:500]
        url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), CLIENT_URL)
        if page is not None:  # the consent page
            answer = submit(agent, url, page.text, button=("decision", "allow"))
            assert answer.status_code in (302, 303), answer.text[:500]
            url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), CLIENT_URL)
        assert page is None, (url, page and page.text[:1000], hs.diagnostics())
        login_token = parse_qs(urlsplit(url).query)["loginToken"][0]

        matrix = hs.login_token(login_token)
        username = _preferred_username(portail, member.id or 0)
        assert matrix.user_id == hs.user_id(username)
        assert username.startswith("marie")
        assert hs.whoami(matrix.access_token) == 200

        logout_page = agent.get(f"{portail.issuer}/logout")
        answer = submit(agent, f"{portail.issuer}/logout", logout_page.text, button=("decision", "logout"))
        assert answer.status_code == 303

    deadline = time.monotonic() + 60  # bounded; the sender is woken at once, but the machine may be busy
    while hs.whoami(matrix.access_token) != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hs.whoami(matrix.access_token) == 401, hs.diagnostics()
    while _delivery(portail)[1] != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)  # Synapse may answer before Portail has recorded the outcome
    assert _delivery(portail) == ("synapse", "sent", 200)


def _delivery(portail: LiveServer) -> tuple[str, str, int | None]:
    with portail.db.session() as s:
        [delivery] = s.exec(select(BackchannelDelivery)).all()
    return delivery.client_id, delivery.status, delivery.last_status_code


def _preferred_username(portail: LiveServer, member_id: int) -> str:
    from portail.oidc.models import MemberUsername

    with portail.db.session() as s:
        row = s.get(MemberUsername, member_id)
        assert row is not None
        return row.username
