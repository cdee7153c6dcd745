"""``GET /metrics``: who may read it, and the values read from the database at each scrape.

Access: with the setting ``metrics_token``, a scrape must send ``Authorization: Bearer <token>``
(compared in constant time) from anywhere; without it, only loopback clients are answered (the
client as seen after trusted proxy headers, so a request relayed by the reverse proxy for someone
outside is refused). Every other request gets a JSON error, never the metrics.

Scrape-time values (cheap indexed counts, one unit of work): live sessions, the back-channel and
account-event queues by status, the instances' breakers by state. Everything else is counted where
it happens (``metrics.py``).
"""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portail import metrics
from portail.accounts.models import LoginSession
from portail.consent.models import AccountEventDelivery
from portail.notifications.models import SourceState
from portail.oidc.models import BackchannelDelivery
from portail.web import json_error

QUEUED = ("pending", "retrying")
BREAKER_STATES = ("closed", "open", "half-open")


def allowed(request: Request, token: str | None) -> bool:
    if token:
        scheme, _sep, presented = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scrape_values(db: Session) -> list[Metric]:
    """Gauges read from the database: live sessions, delivery queues by status."""
    live = db.exec(select(func.count()).select_from(LoginSession).where(col(LoginSession.ended_at).is_(None))).one()
    queues = []
    for table in (BackchannelDelivery, AccountEventDelivery):
        status = col(table.status)
        rows = db.exec(select(status, func.count()).where(status.in_(QUEUED)).group_by(status)).all()
        found = dict(rows)
        queues.append([({"status": s}, float(found.get(s, 0))) for s in QUEUED])
    breaker = col(SourceState.breaker)
    found = dict(
        db.exec(select(breaker, func.count()).where(col(SourceState.member_id).is_(None)).group_by(breaker)).all()
    )
    breakers = [({"state": s}, float(found.get(s, 0))) for s in BREAKER_STATES]
    return [
        metrics.gauge("portail_breakers", "Instances by state of their notification circuit breaker", breakers),
        metrics.gauge("portail_active_sessions", "Login sessions not ended (all nodes)", [({}, float(live))]),
        metrics.gauge(
            "portail_backchannel_queue_depth", "Back-channel logouts waiting to be delivered, by status", queues[0]
        ),
        metrics.gauge(
            "portail_account_event_queue_depth", "Account events (SET) waiting to be delivered, by status", queues[1]
        ),
    ]


async def metrics_endpoint(request: Request) -> Response:
    settings = request.app.state.settings
    if not allowed(request, settings.metrics_token):
        if settings.metrics_token:
            return json_error(
                "invalid_token", "A valid bearer token is required", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
        return json_error("forbidden", "Metrics are served to loopback clients only (or set metrics_token)", 403)
    scraped = await request.app.state.db.run(scrape_values)
    return Response(metrics.render(scraped), media_type=metrics.CONTENT_TYPE)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics")]
