"""A Matrix mention's time from a real Synapse to the member's live stream (push gateway).

Starts Portail (uvicorn in a thread, SQLite, as the interop tests do) and the interop tests' real
Synapse (``tests/interop/synapse_harness.py``; ``PORTAIL_TEST_SYNAPSE_PYTHON`` names its Python),
links Alice's Matrix account through Portail's SSO (which registers Portail's HTTP pusher on the
homeserver), opens her ``/notifications/stream`` (Server-Sent Events), and has Bob mention her
``--mentions`` times in a room, one after the other. For each mention:

- **total**: from just before Bob's ``PUT …/send/m.room.message`` to the event's line on Alice's
  live stream;
- **Portail's share**: from the arrival of Synapse's ``POST /_matrix/push/v1/notify`` at Portail
  (recorded by an ASGI wrapper around the application) to that same line; the rest is Synapse's
  (storing the event, evaluating push rules, its pusher's HTTP call).

Nothing is pulled: the bench checks that Portail never asked Synapse for notifications.

Usage: ``PORTAIL_TEST_SYNAPSE_PYTHON=… .venv/bin/python bench/matrix_push.py [--mentions 20]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portail import db as database  # noqa: E402
from portail.federation.models import Instance  # noqa: E402
from portail.notifications import gateway, linking  # noqa: E402
from portail.notifications.models import SourceLink  # noqa: E402
from tests.conftest import PASSWORD, create_member, make_settings  # noqa: E402
from tests.interop.conftest import LiveServer, synapse_provider  # noqa: E402
from tests.interop.forms import browser  # noqa: E402
from tests.interop.matrix_linking import link_matrix, log_in  # noqa: E402
from tests.interop.synapse_harness import SynapseServer, ensure_synapse_venv, free_port  # noqa: E402


class Arrivals:
    """ASGI wrapper: the monotonic time at which each push-gateway call reached Portail."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == gateway.NOTIFY_PATH:
            self.times.append(time.monotonic())
        await self.app(scope, receive, send)


class Stream:
    """Reads the member's live stream in a thread; the monotonic arrival time of each event, by body."""

    def __init__(self, issuer: str, cookies: httpx.Cookies) -> None:
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.opened = threading.Event()
        self.http = httpx.Client(cookies=cookies, timeout=httpx.Timeout(120.0))
        threading.Thread(target=self._read, args=(f"{issuer}/notifications/stream",), daemon=True).start()
        if not self.opened.wait(30):
            raise SystemExit("the live stream did not open")

    def _read(self, url: str) -> None:
        try:
            with self.http.stream("GET", url) as response:
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        body = json.loads(line[6:]).get("body", "")
                        with self.changed:
                            self.seen[body] = time.monotonic()
                            self.changed.notify_all()
        except httpx.HTTPError:
            return

    def wait_for(self, fragment: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for body, at in self.seen.items():
                    if fragment in body:
                        return at
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    return None

    def close(self) -> None:
        self.http.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run(mentions: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="portail-matrix-bench-"))
    engine = database.make_engine(f"sqlite:///{work / 'portail.db'}")
    database.upgrade(engine)
    engine.dispose()
    port = free_port()
    settings = make_settings(
        work,
        f"sqlite:///{work / 'portail.db'}",
        issuer=f"http://localhost:{port}",
        notification_refresh_seconds=3600,  # no background pass: what arrives was pushed
    )
    portail = LiveServer(settings, port)
    arrivals = Arrivals(portail.app)
    portail.server.config.app = arrivals  # uvicorn loads the application when it starts
    portail.start()
    hs_port = free_port()
    hs = SynapseServer(
        ensure_synapse_venv(ROOT),
        work / "synapse",
        hs_port,
        oidc_provider=synapse_provider(portail, f"http://localhost:{hs_port}/"),
        sso_client_whitelist=[f"{portail.issuer}{linking.CALLBACK}"],
        extra_config={"ip_range_whitelist": ["127.0.0.1", "::1"]},  # Portail is on loopback
    )
    agent = browser()
    stream: Stream | None = None
    totals: list[float] = []
    shares: list[float] = []
    try:
        hs.start()
        member = create_member(settings, "alice@example.org", "Alice Tremblay")
        with portail.db.session() as session:
            instance = Instance(
                slug="matrix",
                name="Matrix En commun",
                software="matrix",
                base_url=hs.public_baseurl.rstrip("/"),
                status="active",
                client_id="synapse",
                provider_identifier="portail",
            )
            session.add(instance)
            session.flush()
            instance_id = instance.id or 0
        log_in(agent, portail.issuer, member.email)
        linked = link_matrix(agent, portail.issuer, hs, instance_id)
        if linked.status_code != 303:
            raise SystemExit(f"linking failed: {linked.status_code} {linked.text[:300]}")
        with portail.db.session() as session:
            account = session.exec(select(SourceLink.account)).one()
        bob = hs.register_user("bob", PASSWORD, admin=True, displayname="Bob")
        stream = Stream(portail.issuer, agent.cookies)
        room_id = hs.api_json("POST", "/_matrix/client/v3/createRoom", bob.access_token, json={"name": "Comité"})[
            "room_id"
        ]
        room = quote(room_id, safe="")
        hs.api_json("POST", f"/_synapse/admin/v1/join/{room}", bob.access_token, json={"user_id": account})
        time.sleep(1.0)  # let the join's own pushes settle
        for n in range(mentions + 1):  # the first one warms up both sides; not counted
            marker = f"mention n° {n}"
            sent = time.monotonic()
            hs.api_json(
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/send/m.room.message/bench{n}",
                bob.access_token,
                json={"msgtype": "m.text", "body": f"Alice: {marker}", "m.mentions": {"user_ids": [account]}},
            )
            live = stream.wait_for(marker, 15.0)
            if live is None:
                raise SystemExit(f"{marker} never reached the live stream\n{hs.diagnostics()}")
            arrived = [t for t in arrivals.times if sent <= t <= live]
            if n and arrived:
                totals.append(live - sent)
                shares.append(live - arrived[-1])
            time.sleep(0.3)
        pulls = portail.app.state.notifications.aggregator.pulls["matrix"]
    finally:
        if stream is not None:
            stream.close()
        agent.close()
        hs.stop()
        portail.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"## a Matrix mention, real Synapse → Portail's push gateway → the member's live stream ({len(totals)})")
    for label, values, note in (
        ("total          ", totals, f"max {max(totals) * 1000:.1f} ms (goal: within a second)"),
        ("Portail's share", shares, "(the notify call's arrival → the line on the stream)"),
    ):
        p50, p95 = statistics.median(values) * 1000, _percentile(values, 0.95) * 1000
        print(f"{label}  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   {note}")
    print(f"Matrix pulls by Portail during the run: {pulls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=20)
    run(parser.parse_args().mentions)


if __name__ == "__main__":
    main()
