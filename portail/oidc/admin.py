"""Administrators' page of the provider: the clients and their back-channel logout deliveries.

``GET /admin/oidc/clients`` (``?client=<id>`` narrows the deliveries to one client) is open to
members with ``is_admin`` only: others get a 403 page, visitors the login page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portail.accounts.current import load_login, login_redirect
from portail.oidc import backchannel, clients
from portail.oidc.backchannel import DeliveryCounts
from portail.oidc.models import BackchannelDelivery, OAuthClient
from portail.web import error_page, render


@dataclass(frozen=True)
class ClientsOverview:
    clients: list[OAuthClient]
    counts: dict[str, DeliveryCounts]
    deliveries: list[BackchannelDelivery]


def overview(db: Session, client_id: str | None) -> ClientsOverview:
    return ClientsOverview(
        clients=clients.list_clients(db),
        counts=backchannel.counts_by_client(db),
        deliveries=backchannel.recent_deliveries(db, client_id, limit=100),
    )


async def clients_page(request: Request) -> Response:
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    if not login.member.is_admin:
        return error_page(request, 403)
    selected = request.query_params.get("client") or None
    data = await request.app.state.db.run(overview, selected)
    return render(
        request,
        "oidc/admin_clients.html",
        {"clients": data.clients, "counts": data.counts, "deliveries": data.deliveries, "selected": selected},
    )
