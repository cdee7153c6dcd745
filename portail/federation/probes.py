"""Health and discovery of active instances, by a background prober in the application's lifespan.

Every ``probe_interval_seconds`` (0 turns it off) one leader among Portail's processes probes the
active instances, ``probe_concurrency`` at a time, each fetch through the SSRF guard under
``outbound_timeout_seconds`` and ``outbound_max_bytes``:

- Nextcloud: ``GET /status.php`` (``{"installed": true, "maintenance": false, "versionstring": …}``);
- Synapse: ``GET /_matrix/client/versions`` (``{"versions": [...]}``: the Matrix *spec* versions it
  speaks, so health only), then ``GET /_matrix/federation/v1/version``
  (``{"server": {"name": "Synapse", "version": "1.x"}}``) for the server's own version;
- other software: ``GET /`` (any answer below 500 counts as up);
- then, for every software, NodeInfo when present (``/.well-known/nodeinfo`` → the linked 2.x
  document's ``software.version``; integrations.md §6.2), best effort.

Demo instances and names reserved never to resolve are not probed (``availability.probed``).
Results land on the ``Instance`` row (health — up, degraded when slower than ``probe_degraded_ms``
or answering partially, down —, latency, version, consecutive failures, last error, ``last_up_at``)
and in ``ProbeSample`` (kept ``availability.UPTIME_DAYS``, for the 30-day uptime shown on the directory and the
hoster's page); the certificate of each reached https node is read, and its hoster warned
``certificates.CERT_WARNING_DAYS`` (14) days before it expires;
after ``probe_failures_before_alert`` failures in a row the hoster is mailed once, and again when
the instance comes back. Pages only read those columns: no member-facing request waits for a probe.

One prober when several processes or nodes run: it is a leader-only task of the background runner
(``portail/background.py``, leadership in ``portail/leadership.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import delete
from sqlmodel import Session, col, select

from portail import metrics
from portail.accounts.members import audit
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database, utcnow
from portail.federation import (
    availability,
    certificates,
    governance,
    lifecycle,
    notice_mail,
    proof_recheck,
    verification,
)
from portail.federation.models import Hoster, Instance, ProbeSample
from portail.federation.verification import Refused
from portail.web import N_

log = logging.getLogger("portail.federation.probes")

NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/"
PATHS = {"nextcloud": "/status.php", "matrix": "/_matrix/client/versions"}
MATRIX_SERVER_VERSION = "/_matrix/federation/v1/version"


@dataclass(frozen=True)
class Target:
    id: int
    slug: str
    software: str
    base_url: str


@dataclass(frozen=True)
class Result:
    up: bool
    latency_ms: int | None = None
    version: str | None = None
    error: str = ""  # why it is down, or (up) why it is degraded
    degraded: bool = False  # reached, but slower than probe_degraded_ms or with a partial answer

    @property
    def state(self) -> str:
        return ("degraded" if self.degraded else "up") if self.up else "down"


def _json(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def _main_check(software: str, fetched: verification.Fetched) -> tuple[bool, str | None, str]:
    """Interpret the software's own health answer: (up, version, error)."""
    if software == "nextcloud":
        if fetched.status != 200:
            return False, None, f"status.php answered {fetched.status}"
        try:
            data = _json(fetched.body)
            installed, maintenance = bool(data.get("installed")), bool(data.get("maintenance"))
            version = str(data.get("versionstring") or data.get("version") or "")[:100] or None
        except (ValueError, AttributeError, UnicodeDecodeError):
            return False, None, "status.php: unreadable answer (not JSON)"
        if not installed or maintenance:
            return False, version, "Nextcloud not installed or in maintenance"
        if data.get("needsDbUpgrade"):
            return True, version, "partial answer: Nextcloud needs a database upgrade"
        return True, version, ""
    if software == "matrix":
        if fetched.status != 200:
            return False, None, f"/_matrix/client/versions answered {fetched.status}"
        try:
            listed = _json(fetched.body).get("versions")
        except (ValueError, AttributeError, UnicodeDecodeError):
            return False, None, "/_matrix/client/versions: unreadable answer (not JSON)"
        versions = [str(v) for v in listed] if isinstance(listed, list) else []
        if not versions:
            return False, None, "/_matrix/client/versions: no versions"
        return True, None, ""  # spec versions, not the server's: see _matrix_server
    if fetched.status >= 500:
        return False, None, f"answered {fetched.status}"
    return True, None, ""


async def _matrix_server(settings: Settings, base_url: str, http: httpx.AsyncClient | None) -> str | None:
    """The homeserver's name and version (``GET /_matrix/federation/v1/version``), best effort."""
    try:
        fetched = await verification.fetch(
            settings, base_url + MATRIX_SERVER_VERSION, accept="application/json", max_bytes=65536, http=http
        )
        if fetched.status != 200:
            return None
        server = _json(fetched.body).get("server", {})
        name, version = str(server.get("name", ""))[:40], str(server.get("version", ""))[:50]
        return f"{name} {version}".strip() or None
    except (Refused, ValueError, AttributeError, TypeError, UnicodeDecodeError):
        return None


async def _nodeinfo(settings: Settings, base_url: str, http: httpx.AsyncClient | None) -> str | None:
    """NodeInfo 2.x ``software.name`` and ``version`` when the node publishes it (best effort)."""
    try:
        index = await verification.fetch(
            settings, f"{base_url}/.well-known/nodeinfo", accept="application/json", max_bytes=65536, http=http
        )
        if index.status != 200:
            return None
        links = [
            link
            for link in _json(index.body).get("links", [])
            if isinstance(link, dict) and str(link.get("rel", "")).startswith(NODEINFO_REL) and link.get("href")
        ]
        if not links:
            return None
        href = str(sorted(links, key=lambda link: str(link["rel"]))[-1]["href"])
        document = await verification.fetch(settings, href, accept="application/json", http=http)
        software = _json(document.body).get("software", {})
        name, version = str(software.get("name", ""))[:40], str(software.get("version", ""))[:50]
        return f"{name} {version}".strip() or None
    except (Refused, ValueError, AttributeError, TypeError, KeyError, UnicodeDecodeError):
        return None


async def probe(settings: Settings, target: Target, http: httpx.AsyncClient | None = None) -> Result:
    """Probe one instance; never raises. ``http`` (a guard client, ``verification.client``) is shared
    by a round so that TLS contexts and connections are not rebuilt for every instance."""
    url = target.base_url + PATHS.get(target.software, "/")
    try:
        fetched = await verification.fetch(settings, url, accept="application/json, text/html;q=0.5", http=http)
    except Refused as exc:
        return Result(up=False, error=str(exc)[:500])
    up, version, error = _main_check(target.software, fetched)
    if up and target.software == "matrix":
        version = await _matrix_server(settings, target.base_url, http)
    if up:
        version = await _nodeinfo(settings, target.base_url, http) or version
    slow = fetched.elapsed_ms is not None and fetched.elapsed_ms > settings.probe_degraded_ms
    if up and slow and not error:
        error = f"slow: {fetched.elapsed_ms} ms (over {settings.probe_degraded_ms} ms)"
    return Result(up=up, latency_ms=fetched.elapsed_ms, version=version, error=error, degraded=up and bool(error))


def active_targets(db: Session) -> list[Target]:
    """Active instances worth probing: demo entries and reserved names are skipped (availability.py)."""
    rows = db.exec(select(Instance).where(Instance.status == "active").order_by(Instance.id))  # type: ignore[arg-type]
    return [Target(i.id or 0, i.slug, i.software, i.base_url) for i in rows if availability.probed(i)]


def record(db: Session, settings: Settings, target: Target, result: Result) -> Instance | None:
    """Store one result; mail the hoster when the instance has just crossed the failure threshold."""
    instance = db.get(Instance, target.id)
    if instance is None:
        return None
    now = utcnow()
    instance.last_probe_at = now
    instance.latency_ms = result.latency_ms
    instance.last_probe_error = result.error[:500]
    if result.version:
        instance.software_version = result.version
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    db.add(ProbeSample(instance_id=instance.id or 0, at=now, state=result.state, latency_ms=result.latency_ms))
    if result.up:
        instance.health, instance.consecutive_failures, instance.last_up_at = result.state, 0, now
        if instance.down_notified_at is not None:
            instance.down_notified_at = None
            audit(db, "instance.up_again", subject_type="instance", subject_id=instance.slug)
            if hoster is not None:
                notice_mail.send(
                    settings,
                    notice_mail.hoster_recipients(db, settings, hoster),
                    N_("Instance de nouveau joignable : %(instance)s"),
                    N_("L’instance %(instance)s (%(url)s) répond de nouveau."),
                    instance=instance.name,
                    url=instance.base_url,
                )
    else:
        instance.health = "down"
        instance.consecutive_failures += 1
        threshold = max(1, settings.probe_failures_before_alert)
        if instance.consecutive_failures >= threshold and instance.down_notified_at is None:
            instance.down_notified_at = now
            audit(
                db,
                "instance.down_flagged",
                subject_type="instance",
                subject_id=instance.slug,
                reason=f"{instance.consecutive_failures} failures: {result.error}",
            )
            if hoster is not None:
                notice_mail.send(
                    settings,
                    notice_mail.hoster_recipients(db, settings, hoster),
                    N_("Instance injoignable : %(instance)s"),
                    N_("L’instance %(instance)s (%(url)s) a échoué %(count)s vérifications de suite."),
                    reason=result.error,
                    link=f"{settings.issuer}/federation/instances/{instance.slug}",
                    instance=instance.name,
                    url=instance.base_url,
                    count=instance.consecutive_failures,
                )
    db.add(instance)
    return instance


async def run_round(settings: Settings, db: Database, slugs: set[str] | None = None) -> list[tuple[Target, Result]]:
    """Probe every active instance (or those named), ``probe_concurrency`` at a time, and record."""
    targets = [t for t in await db.run(active_targets) if slugs is None or t.slug in slugs]
    gate = asyncio.Semaphore(max(1, settings.probe_concurrency))
    budget = settings.outbound_timeout_seconds * 3 + 1

    async def one(target: Target, http: httpx.AsyncClient) -> tuple[Target, Result]:
        async with gate:
            try:
                async with asyncio.timeout(budget):
                    return target, await probe(settings, target, http)
            except TimeoutError:
                return target, Result(up=False, error="timeout: probe took too long")

    async with verification.client(settings) as http:
        results = list(await asyncio.gather(*(one(t, http) for t in targets)))
    for _target, result in results:
        metrics.PROBES.labels("up" if result.up else "down").inc()
    await db.run(record_all, settings, results)
    await check_certificates(settings, db, [t for t, r in results if r.up])
    return results


async def check_certificates(settings: Settings, db: Database, targets: list[Target]) -> None:
    """Read each reached https node's certificate expiry; hosters are warned ahead (certificates.py)."""
    gate = asyncio.Semaphore(max(1, settings.probe_concurrency))

    async def one(target: Target) -> tuple[Target, dt.datetime | None]:
        async with gate:
            return target, await certificates.expiry(settings, target.base_url)

    found = await asyncio.gather(*(one(t) for t in targets if t.base_url.startswith("https://")))
    for target, not_after in found:
        if not_after is not None:
            await db.run(certificates.record_expiry, settings, target.id, not_after)


def record_all(db: Session, settings: Settings, results: list[tuple[Target, Result]]) -> None:
    """Store a round's results in one transaction (one commit, not one per instance), and forget the
    samples older than ``availability.UPTIME_DAYS``."""
    for target, result in results:
        record(db, settings, target, result)
    cutoff = utcnow() - dt.timedelta(days=availability.UPTIME_DAYS)
    db.execute(delete(ProbeSample).where(col(ProbeSample.at) < cutoff))  # type: ignore[call-overload]


async def probe_pass(settings: Settings, db: Database) -> None:
    """One pass of the prober task: probe and record, retire the registrations whose domain proof is
    overdue (releasing their URLs), give hosters behind on the charter their deadline (suspending those
    past it), and re-check each node's domain proof when due."""
    await run_round(settings, db)
    await db.run(lifecycle.expire_unproven, settings)
    await db.run(governance.charter_sweep, settings)
    await proof_recheck.recheck_due(settings, db)


def register_tasks(runner: Runner, settings: Settings, db: Database) -> Task:
    """The prober, a leader-only task of the background runner every ``probe_interval_seconds`` (0: off),
    its first pass soon after start."""
    every = float(settings.probe_interval_seconds)
    return runner.add(Task("probes", lambda: probe_pass(settings, db), every=every, first_delay=min(10.0, every)))
