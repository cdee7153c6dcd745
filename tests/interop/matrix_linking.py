"""Steps shared by the real-Synapse notification tests: log a member in to Portail and link their
Matrix account through Portail's own SSO, over real HTTP, as ``test_notifications_matrix.py``
describes (Synapse → Portail ``/authorize`` → consent if asked → Synapse → Portail's callback with
``loginToken``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from portail.notifications import linking
from tests.conftest import PASSWORD, csrf_from
from tests.interop.forms import submit, walk
from tests.interop.synapse_harness import SynapseServer


def log_in(agent: httpx.Client, issuer: str, email: str) -> None:
    login_page = agent.get(f"{issuer}/login")
    answer = submit(agent, f"{issuer}/login", login_page.text, email=email, password=PASSWORD)
    assert answer.status_code == 303, answer.text[:500]


def link_matrix(agent: httpx.Client, issuer: str, hs: SynapseServer, instance_id: int) -> httpx.Response:
    """Click "Lier mon compte Matrix" and walk the SSO round trip; returns Portail's callback answer."""
    prefs = agent.get(f"{issuer}/notifications/preferences")
    assert "Lier mon compte Matrix" in prefs.text
    start = agent.post(f"{issuer}/notifications/link/matrix/{instance_id}", data={"csrf_token": csrf_from(prefs.text)})
    assert start.status_code == 303
    sso = urlsplit(start.headers["location"])
    assert sso.path.startswith("/_matrix/client/v3/login/sso/redirect/oidc-")
    assert parse_qs(sso.query)["redirectUrl"][0].startswith(f"{issuer}{linking.CALLBACK}?state=")
    url, page = walk(agent, start.headers["location"], f"{issuer}{linking.CALLBACK}")
    if page is not None:
        assert "/consent" in urlsplit(url).path, (url, page.text[:800], hs.diagnostics())
        answer = submit(agent, url, page.text, button=("decision", "allow"))
        assert answer.status_code in (302, 303), answer.text[:500]
        url, page = walk(agent, str(httpx.URL(url).join(answer.headers["location"])), f"{issuer}{linking.CALLBACK}")
    assert page is None, (url, page and page.text[:1000], hs.diagnostics())
    query = parse_qs(urlsplit(url).query)
    assert query["loginToken"][0] and query["state"][0]
    return agent.get(url)  # Portail exchanges the loginToken with m.login.token
