"""Journey: an operator runs Portail as two identical nodes on one PostgreSQL database and one Redis,
and members, tools and background work see one Portail.

Each node is a real ``portail serve`` with its own folder (``var/``), sharing only what a deployment
shares: ``PORTAIL_DATABASE_URL``, ``PORTAIL_REDIS_URL``, ``PORTAIL_SECRET_KEY`` and the same
``instances.toml``. Everything is done through the pages, the CLI and the public endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import importlib.util
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD, free_port
from tests.journeys.conftest import Deployment, Visitor, sign_up
from tests.journeys.test_member_tools import EMAIL, Receiver, Tool, _receiver, log_in_to

INSTANCES = """
[[hosters]]
slug = "projet-collectif"
name = "Projet collectif"
website = "https://projetcollectif.ca"
contact_email = "technique@projetcollectif.example"
charter_version = "2026-11"

[[instances]]
slug = "passerelles"
name = "Passerelles"
software = "passerelles"
base_url = "{base_url}"
hoster = "projet-collectif"
scope = "central"
trusted = true
redirect_uris = ["{base_url}/auth/callback"]
backchannel_logout_uri = "{base_url}/auth/backchannel-logout"
client_secret_env = "ENCOMMUN_SECRET_PASSERELLES"

[[instances]]
slug = "nouvelles"
name = "Nouvelles du collectif"
software = "other"
base_url = "{feed_url}"
hoster = "projet-collectif"
scope = "central"
redirect_uris = ["{feed_url}/callback"]
feed_url = "{feed_url}/feed.xml"
"""

# Periods the clusters below are configured with, as an operator can (README, Configuration): the
# back-channel sender polls every POLL seconds (default 5), each node reloads its signing keys every
# KEY_RELOAD seconds (default 60), and a delivery being sent is leased for LEASE seconds (default 60)
# in the test of a node killed mid-delivery. The tests wait in multiples of these, not of the defaults.
POLL = 1
KEY_RELOAD = 5
LEASE = 15

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Nouvelles du collectif</title><id>urn:nouvelles</id><updated>{now}</updated>
  <entry><title>Assemblée générale jeudi</title><id>urn:nouvelles:ag</id><updated>{now}</updated>
    <link href="{base}/ag"/><summary>Ordre du jour en ligne</summary></entry>
</feed>
"""


def feed_server() -> ThreadingHTTPServer:
    """A news site's Atom feed on loopback, one fresh entry."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = ATOM.format(now=now, base=f"http://127.0.0.1:{self.server.server_port}").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


class Cluster:
    """Two deployments of one Portail, and the tool that logs members in through it."""

    def __init__(self, root: Path, database_url: str, redis_url: str, tool: Receiver, **settings: str) -> None:
        self.feed = feed_server()
        self.tool = Tool(
            "passerelles",
            secrets.token_urlsafe(32),
            f"{tool.base_url}/auth/callback",
            "/auth/backchannel-logout",
            "",
            tool,
        )
        shared = {
            "PORTAIL_REDIS_URL": redis_url,  # empty: no Redis (PostgreSQL coordinates)
            "PORTAIL_SECRET_KEY": secrets.token_urlsafe(48),
            "ENCOMMUN_SECRET_PASSERELLES": self.tool.secret,
            **{f"PORTAIL_{k.upper()}": v for k, v in settings.items()},
        }
        self.nodes = [Deployment(root / name, database_url) for name in ("a", "b")]
        for node in self.nodes:
            node.root.mkdir()
            node.env.update(shared)
            feed_url = f"http://127.0.0.1:{self.feed.server_port}"
            node.write_instances(INSTANCES.format(base_url=tool.base_url, feed_url=feed_url))

    def start(self) -> None:
        for node in self.nodes:  # one after the other, as an operator's rolling start does
            node.start()

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.feed.shutdown()
        self.feed.server_close()


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres: str, redis_url: str) -> Iterator[Cluster]:
    tool = _receiver()
    nodes = Cluster(
        tmp_path,
        fresh_postgres,
        redis_url,
        tool,
        probe_interval_seconds="1",
        backchannel_poll_seconds=str(POLL),
        signing_key_reload_seconds=str(KEY_RELOAD),
    )
    try:
        yield nodes
    finally:
        nodes.close()
        tool.server.shutdown()
        tool.server.server_close()


def as_visitor_of(node: Deployment, browser: Visitor) -> Visitor:
    """The same browser (same cookies) talking to another node, as behind a load balancer."""
    moved = node.visitor()
    moved.http.cookies.update(browser.http.cookies)
    return moved


def header_kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def service_client(node: Deployment) -> tuple[str, str]:
    """A machine client registered from the CLI (client-credentials grant)."""
    created = node.cli("clients", "create", "--name", "Robot", "--grant-type", "client_credentials", "--json")
    data = json.loads(created.stdout)
    return data["client_id"], data["client_secret"]


def client_credentials_kid(node: Deployment, client: tuple[str, str]) -> str:
    """The ``kid`` a node signs a client-credentials access token with (ES256)."""
    answer = httpx.post(f"{node.base_url}/token", data={"grant_type": "client_credentials"}, auth=client)
    assert answer.status_code == 200, answer.text
    return header_kid(answer.json()["access_token"])


def test_two_nodes_on_one_database_serve_as_one_portail(cluster: Cluster) -> None:
    """Journey: sessions, login throttling, key rotation and logout everywhere across two nodes."""
    a, b = cluster.nodes
    cluster.start()
    assert a.admin_email and not b.admin_email, "one administrator, printed once, by the first node"

    # A session opened on A is a session on B.
    browser_a = sign_up(a, EMAIL)
    assert browser_a.login(EMAIL).status_code == 303
    browser_b = as_visitor_of(b, browser_a)
    account = browser_b.get("/account")
    assert account.status_code == 200, account.text[:500]
    assert EMAIL in account.text

    # Failed logins are counted across both nodes: 5 failures (3 on A, 2 on B) reach the threshold.
    for node in (a, b, a, b, a):
        failed = node.visitor().submit("/login", data={"email": EMAIL, "password": "not-the-password"})
        assert failed.status_code == 401, failed.text[:300]
    throttled = b.visitor().submit("/login", data={"email": EMAIL, "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0

    # A key rotated from the CLI is published at once by both nodes and signs on both.
    robot = service_client(a)
    before = client_credentials_kid(b, robot)
    a.cli("keys", "rotate", "--now")
    rotated_at = time.monotonic()
    new_kids = {k["kid"] for k in json.loads(a.cli("keys", "list", "--json").stdout) if k["alg"] == "ES256"} - {before}
    assert len(new_kids) == 1

    # The member logs in to the tool through A; logging out on B sends exactly one back-channel logout.
    signed_in = log_in_to(cluster.tool, a, browser_a)
    assert signed_in.claims["sub"]
    out = browser_b.submit("/logout")
    assert out.status_code == 303
    [logout_token] = cluster.tool.receiver.wait_for("/auth/backchannel-logout")
    time.sleep(5 * POLL)  # the leader polls the queue every POLL s: five chances to send it again
    assert len([p for p, _t, _b in cluster.tool.receiver.posts if p == "/auth/backchannel-logout"]) == 1
    assert b"logout_token=" in logout_token
    sent = [metric(node, "portail_backchannel_deliveries_total", "result").get("sent", 0) for node in (a, b)]
    assert sorted(sent) == [0, 1], f"one node sent it, once: {sent}"
    assert browser_a.get("/account").status_code in (302, 303), "the session ended on every node"

    # Each node signs with the new key once its key ring reloads (at most KEY_RELOAD s).
    for node in (a, b):
        while client_credentials_kid(node, robot) not in new_kids:
            assert time.monotonic() - rotated_at < KEY_RELOAD + 15, f"{node.base_url} still signs with {before}"
            time.sleep(1)


def test_a_notification_pulled_on_one_node_reaches_a_stream_open_on_the_other(cluster: Cluster) -> None:
    """Journey: a member subscribes to a news feed; their inbox opened on node A pulls it, and the
    live stream their other tab holds on node B shows the new notification (Redis pub/sub)."""
    a, b = cluster.nodes
    cluster.start()
    browser_a = sign_up(a, EMAIL)
    assert browser_a.login(EMAIL).status_code == 303
    preferences = browser_a.get("/notifications/preferences")
    assert preferences.status_code == 200
    forms = re.findall(
        r'<form method="post" action="(/notifications/preferences/\d+)">(.*?)</form>', preferences.text, re.S
    )
    [action] = [action for action, body in forms if "Suivre les publications" in body]
    saved = browser_a.submit("/notifications/preferences", action, data={"enabled": "1", "digest": "none"})
    assert saved.status_code == 303, saved.text[:500]

    tab_b = as_visitor_of(b, browser_a)
    with contextlib.closing(tab_b.http), tab_b.http.stream("GET", "/notifications/stream") as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "retry: 5000"  # subscribed on B
        inbox = browser_a.get("/notifications")  # node A pulls the feed within the page's budget
        assert inbox.status_code == 200
        event: dict[str, str] = {}
        for line in lines:
            if line.startswith(":") or not line:
                if "data" in event:
                    break
                continue
            field, _, value = line.partition(": ")
            event[field] = value
    assert event.get("event") == "notification", event
    assert "Assemblée générale jeudi" in json.loads(event["data"])["title"]


def metric(node: Deployment, name: str, label: str) -> dict[str, float]:
    """One series of a node's /metrics (read from loopback), by the value of one label."""
    text = httpx.get(f"{node.base_url}/metrics").text
    return {
        sample.labels.get(label, ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def leaders(node: Deployment) -> dict[str, float]:
    """``portail_background_leader`` of a node, by task."""
    return metric(node, "portail_background_leader", "task")


def wait_for_leaders(nodes: list[Deployment], tasks: tuple[str, ...], timeout: float) -> dict[str, list[str]]:
    """Wait until each task has a leader among ``nodes``; which nodes lead each task."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {node.base_url: leaders(node) for node in nodes}
        leading = {task: [url for url, found in seen.items() if found.get(task) == 1] for task in tasks}
        if all(leading.values()) or time.monotonic() > deadline:
            return leading
        time.sleep(0.5)


@pytest.mark.parametrize("coordination", ["redis", "postgres"])
def test_one_node_runs_each_background_task_and_another_takes_over_when_it_dies(
    tmp_path: Path, fresh_postgres: str, coordination: str, request: pytest.FixtureRequest
) -> None:
    """Journey: an operator watches leadership on /metrics, kills the leading node, and the other one
    takes every background task over within a bounded time: with Redis, the leader's lease (3 probe
    intervals, 3 notification periods); without it, PostgreSQL advisory locks, freed when the dead
    node's connection closes."""
    redis_url = request.getfixturevalue("redis_url") if coordination == "redis" else ""
    tool = _receiver()
    cluster = Cluster(
        tmp_path, fresh_postgres, redis_url, tool, probe_interval_seconds="2", notification_refresh_seconds="1"
    )
    try:
        cluster.start()
        tasks = ("probes", "notifications")
        leading = wait_for_leaders(cluster.nodes, tasks, timeout=30)
        for task in tasks:
            assert len(leading[task]) == 1, f"{task}: exactly one leader expected, found {leading[task]}"
        leader = next(n for n in cluster.nodes if n.base_url == leading["probes"][0])
        other = next(n for n in cluster.nodes if n is not leader)
        deadline = time.monotonic() + 30
        while not metric(leader, "portail_probes_total", "result"):  # its first round is under way
            assert time.monotonic() < deadline, "the leader never probed"
            time.sleep(0.5)
        assert not metric(other, "portail_probes_total", "result"), "only the leader probes"
        leader.kill()
        # Redis leases: probes 3 × 2 s, notifications 3 × 5 s; plus one loop period each.
        taken = wait_for_leaders([other], tasks, timeout=40)
        for task in tasks:
            assert taken[task] == [other.base_url], f"{task} was not taken over: {leaders(other)}"
    finally:
        cluster.close()
        tool.server.shutdown()
        tool.server.server_close()


class HangingTool:
    """A tool whose back-channel endpoint holds the first logout without answering (the node sending
    it dies meanwhile), then answers the next ones at once."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.arrivals: list[float] = []  # time.monotonic() of each POST
        self.arrived = threading.Condition()
        self.release = threading.Event()
        tool = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with tool.arrived:
                    tool.arrivals.append(time.monotonic())
                    tool.bodies.append(body)
                    first = len(tool.bodies) == 1
                    tool.arrived.notify_all()
                if first:
                    tool.release.wait(120)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> list[bytes]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.bodies) >= count, timeout)
        assert len(self.bodies) >= count, f"{count} back-channel POST(s) expected, got {len(self.bodies)}"
        return list(self.bodies)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def sid_of(body: bytes) -> str:
    token = dict(pair.split("=", 1) for pair in body.decode().split("&"))["logout_token"]
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])


def test_a_node_killed_while_sending_a_logout_leaves_it_to_another_node_which_sends_it_once(
    tmp_path: Path, fresh_postgres: str, redis_url: str
) -> None:
    """Journey: node A dies in the middle of a back-channel delivery; the delivery's lease
    (``backchannel_lease_seconds``, LEASE here) expires and node B delivers it, once, not before."""
    hanging = HangingTool()
    receiver = Receiver(hanging.base_url, hanging.server)  # the Tool's description only
    cluster = Cluster(
        tmp_path,
        fresh_postgres,
        redis_url,
        receiver,
        backchannel_lease_seconds=str(LEASE),
        outbound_timeout_seconds=str(LEASE - 5),  # A's request outlives its kill: the lease frees the row
        backchannel_poll_seconds=str(POLL),
    )
    a, b = cluster.nodes
    try:
        cluster.start()
        browser = sign_up(a, EMAIL)
        log_in_to(cluster.tool, a, browser)
        b.stop()  # so that A, where the member logs out, is the one sending
        assert browser.submit("/logout").status_code == 303
        [first] = hanging.wait_for(1, timeout=30)
        a.kill()  # mid-delivery: the tool has the request, A never learns the answer
        b.start()
        bodies = hanging.wait_for(2, timeout=LEASE + 30)  # well before the default 60 s lease would free it
        assert sid_of(bodies[1]) == sid_of(first), "the same logout, delivered by B"
        waited = hanging.arrivals[1] - hanging.arrivals[0]
        assert waited >= LEASE - 3, f"B sent it {waited:.1f} s after A did, before A's {LEASE} s lease ran out"
        deadline = time.monotonic() + 15
        while metric(b, "portail_backchannel_deliveries_total", "result").get("sent") != 1:
            assert time.monotonic() < deadline, metric(b, "portail_backchannel_deliveries_total", "result")
            time.sleep(0.5)
        time.sleep(5 * POLL)  # B polls every POLL s: five more chances to send it again
        assert len(hanging.bodies) == 2
    finally:
        cluster.close()
        hanging.close()


def faketime_env(offset: str) -> dict[str, str]:
    """What runs a process with its clock shifted by ``offset`` (``+60s``): the libfaketime library
    bundled by the ``libfaketime`` package, preloaded (wall clock only; monotonic time untouched)."""
    spec = importlib.util.find_spec("libfaketime")
    assert spec is not None and spec.origin, "the libfaketime package is a test dependency"
    library = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    assert library.exists(), library
    return {"LD_PRELOAD": str(library), "FAKETIME": offset, "DONT_FAKE_MONOTONIC": "1"}


def refresh(node: Deployment, tool: Tool, refresh_token: str) -> httpx.Response:
    """The tool's refresh-token grant at a node (``client_secret_basic``)."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return httpx.post(f"{node.base_url}/token", data=data, auth=(tool.slug, tool.secret))


def clock_offset(node: Deployment) -> float:
    """``portail_clock_offset_seconds`` of a node, once its first check (at start) has run."""
    deadline = time.monotonic() + 20
    while not (found := metric(node, "portail_clock_offset_seconds", "")):
        assert time.monotonic() < deadline, "no clock check on /metrics"
        time.sleep(0.5)
    return found[""]


def test_a_node_whose_clock_runs_a_minute_ahead_never_sends_a_logout_twice_and_says_its_clock_is_off(
    tmp_path: Path, fresh_postgres: str
) -> None:
    """Fault: node B's clock runs 60 s ahead (NTP broke on its machine). B leads the background work;
        a member logs out on A, whose sender takes the back-channel logout and waits on a slow tool. B
        polls meanwhile: by its own clock, A's 60 s lease would already be over and B would send the
        logout a second time; leases are read on the database's clock, so B leaves it alone. Two
    refreshes of one token within the grace window, through A then B, are not a reuse either. B's
        /metrics shows its clock 60 s ahead of the database's, A's shows it right, and B's log says so
        in French and English."""
    holding = HangingTool()
    receiver = Receiver(holding.base_url, holding.server)
    cluster = Cluster(
        tmp_path,
        fresh_postgres,
        "",
        receiver,
        outbound_timeout_seconds="40",
        backchannel_lease_seconds="60",  # the default, as long as B's clock is ahead
        backchannel_poll_seconds=str(POLL),
    )
    a, b = cluster.nodes
    b.env.update(faketime_env("+60s"))
    try:
        b.start()  # first: B takes the background leadership (PostgreSQL advisory lock)
        a.start()
        leading = wait_for_leaders(cluster.nodes, ("backchannel",), timeout=30)
        assert leading["backchannel"] == [b.base_url], leading
        offsets = {node.base_url: clock_offset(node) for node in (a, b)}
        assert 55 <= offsets[b.base_url] <= 65, offsets
        assert abs(offsets[a.base_url]) < 2, offsets
        assert "synchronisez-la (NTP)" in b.server_log.read_text(encoding="utf-8")
        assert "synchronisez-la (NTP)" not in a.server_log.read_text(encoding="utf-8")

        browser = sign_up(a, EMAIL)
        signed_in = log_in_to(cluster.tool, a, browser)
        # The tool refreshes from two tabs at once, one request reaching A and the other B: within the
        # grace window by the database's clock (60 s "late" by B's), so not taken for a reuse.
        old = signed_in.tokens["refresh_token"]
        first = refresh(a, cluster.tool, old)
        assert first.status_code == 200, first.text
        again = refresh(b, cluster.tool, old)
        assert again.status_code == 200, again.text
        assert refresh(a, cluster.tool, first.json()["refresh_token"]).status_code == 200, "grant kept"

        assert browser.submit("/logout").status_code == 303
        holding.wait_for(1, timeout=30)  # A's sender (woken by the logout) is waiting on the tool
        time.sleep(5 * POLL)  # B polls every POLL s: five chances to take A's delivery
        assert len(holding.bodies) == 1, "B sent the logout A was sending"
        holding.release.set()
        deadline = time.monotonic() + 15
        while metric(a, "portail_backchannel_deliveries_total", "result").get("sent") != 1:
            assert time.monotonic() < deadline, metric(a, "portail_backchannel_deliveries_total", "result")
            time.sleep(0.5)
        time.sleep(3 * POLL)
        assert len(holding.bodies) == 1
        assert not metric(b, "portail_backchannel_deliveries_total", "result")
    finally:
        cluster.close()
        holding.close()


@pytest.mark.parametrize("coordination", ["redis", "postgres"])
def test_a_tools_pushes_are_counted_against_its_limit_across_both_nodes(
    tmp_path: Path, fresh_postgres: str, coordination: str, request: pytest.FixtureRequest
) -> None:
    """Journey: a tool allowed 4 notifications a minute pushes through whichever node the load
    balancer picks (docs/notifications-api.md: a client-credentials token of scope
    ``notifications:push``, then ``POST /api/v1/notifications``): 3 through A and 1 through B pass,
    the fifth, through B, is refused with 429 and ``Retry-After``. The count lives in Redis, or
    without it in PostgreSQL."""
    redis_url = request.getfixturevalue("redis_url") if coordination == "redis" else ""
    tool = _receiver()
    cluster = Cluster(tmp_path, fresh_postgres, redis_url, tool, notification_push_per_minute="4")
    a, b = cluster.nodes
    try:
        cluster.start()
        browser = sign_up(a, EMAIL)
        sub = log_in_to(cluster.tool, a, browser).claims["sub"]

        def push(node: Deployment, n: int) -> httpx.Response:
            answer = httpx.post(
                f"{node.base_url}/token",
                data={"grant_type": "client_credentials", "scope": "notifications:push"},
                auth=(cluster.tool.slug, cluster.tool.secret),
            )
            assert answer.status_code == 200, answer.text
            item = {
                "id": f"n-{n}",
                "sub": sub,
                "type": "reply",
                "title": f"Réponse {n}",
                "link": f"{tool.base_url}/{n}",
            }
            return httpx.post(
                f"{node.base_url}/api/v1/notifications",
                headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
                json={"notifications": [item]},
            )

        if dt.datetime.now(dt.UTC).second > 45:  # the limit counts per minute: stay inside one
            time.sleep(61 - dt.datetime.now(dt.UTC).second)
        for n, node in enumerate((a, a, a, b)):
            accepted = push(node, n)
            assert accepted.status_code == 200, accepted.text
        refused = push(b, 4)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert push(a, 5).status_code == 429, "A sees the same count"
    finally:
        cluster.close()
        tool.server.shutdown()
        tool.server.server_close()


class RoundRobin:
    """A layer-4 load balancer on loopback (what HAProxy's ``balance roundrobin`` does in TCP mode):
    each new connection goes to the next node, bytes are copied both ways."""

    def __init__(self, ports: list[int]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.ports = itertools.cycle(ports)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client, next(self.ports)), daemon=True).start()

    def _relay(self, client: socket.socket, port: int) -> None:
        with client, socket.create_connection(("127.0.0.1", port)) as upstream:
            back = threading.Thread(target=self._copy, args=(upstream, client), daemon=True)
            back.start()
            self._copy(client, upstream)
            back.join(60)

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def test_two_nodes_behind_one_address_serve_a_tool_whichever_node_answers_each_request(
    tmp_path: Path, fresh_postgres: str, redis_url: str
) -> None:
    """Journey: the operator's deployment as ``docs/deploy.md`` has it: two nodes with one
    ``PORTAIL_ISSUER``, the address of a load balancer that sends each new connection to the next
    node (no sticky sessions). The member's browser and the tool open a new connection for each
    request, so consecutive requests of one login, one token chain and one logout land on different
    nodes: the code flow (with its CSRF-protected pages), the ID token's issuer and keys, userinfo,
    a chain of refreshes and the logout all work, and both nodes answered userinfo."""
    tool = _receiver()
    cluster = Cluster(tmp_path, fresh_postgres, redis_url, tool)
    a, b = cluster.nodes
    balancer = RoundRobin([a.port, b.port])
    for node in cluster.nodes:
        node.env["PORTAIL_ISSUER"] = balancer.base_url
    try:
        cluster.start()
        sign_up(a, EMAIL)
        browser = Visitor(balancer.base_url)
        browser.http.headers["Connection"] = "close"  # a new connection, so the next node, every request
        assert browser.login(EMAIL).status_code == 303
        front = Deployment(tmp_path / "front")  # only its address is used: the balancer's
        front.base_url = balancer.base_url
        signed_in = log_in_to(cluster.tool, front, browser)
        assert signed_in.claims["iss"] == balancer.base_url

        bearer = {"Authorization": f"Bearer {signed_in.tokens['access_token']}", "Connection": "close"}
        for _ in range(4):
            answer = httpx.get(f"{balancer.base_url}/userinfo", headers=bearer)
            assert answer.status_code == 200, answer.text
            assert answer.json()["sub"] == signed_in.claims["sub"]
        served = [metric(node, "portail_http_requests_total", "route").get("/userinfo", 0) for node in (a, b)]
        assert all(count > 0 for count in served), f"userinfo answered by each node: {served}"

        current = signed_in.tokens["refresh_token"]
        for _ in range(4):
            answer = refresh(front, cluster.tool, current)
            assert answer.status_code == 200, answer.text
            current = answer.json()["refresh_token"]

        assert browser.submit("/logout").status_code == 303
        [logout_token] = cluster.tool.receiver.wait_for("/auth/backchannel-logout")
        assert b"logout_token=" in logout_token
        assert browser.get("/account").status_code in (302, 303), "the session ended on every node"
    finally:
        cluster.close()
        balancer.close()
        tool.server.shutdown()
        tool.server.server_close()
