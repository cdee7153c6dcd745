"""``create_app(settings)``: joins every package's routes, the middleware and the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from portail import db as database
from portail.accounts import sessions
from portail.accounts.current import SessionLoader
from portail.accounts.organization_routes import routes as organization_routes
from portail.accounts.passwords import Passwords
from portail.accounts.routes import routes as account_routes
from portail.config import Settings, load_settings
from portail.consent import hooks as consent_hooks
from portail.consent.jobs import PrivacyJobs
from portail.consent.officer_routes import routes as privacy_officer_routes
from portail.consent.routes import routes as consent_routes
from portail.dashboard.routes import routes as dashboard_routes
from portail.federation import startup as federation
from portail.federation.routes import routes as federation_routes
from portail.notifications import hub as notifications_hub
from portail.notifications.api import routes as notifications_api_routes
from portail.notifications.routes import UnreadBadge
from portail.notifications.routes import routes as notifications_routes
from portail.oidc import backchannel, client_keys
from portail.oidc import keys as oidc_keys
from portail.oidc import tokens as oidc_tokens
from portail.oidc.routes import MACHINE_PATHS
from portail.oidc.routes import routes as oidc_routes
from portail.web import STATIC, WebShellMiddleware, http_exception_handler, server_error_handler
from portail.web.health import routes as health_routes
from portail.web.outage import DatabaseOutage

log = logging.getLogger("portail")


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Starlette:
    settings = settings or load_settings()
    db = database.Database(settings)
    passwords = Passwords(settings)
    consent_hooks.install(settings)
    if migrate:
        database.check_connection(db.engine)
        database.upgrade(db.engine)
    oidc_keys.install(db.engine, settings)
    sessions.on_session_end(oidc_tokens.on_session_end)
    backchannel.register_hook(settings)
    sender = backchannel.BackchannelSender(db, settings)
    federation.register_hooks()
    prober = federation.prober(settings, db)
    notifications = notifications_hub.install(db, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sender.start()
        prober.start()
        notifications.start_background()
        privacy_jobs = app.state.privacy_jobs = PrivacyJobs(db, settings)
        privacy_jobs.start()
        try:
            yield
        finally:
            await privacy_jobs.stop()
            await notifications.aclose()
            await prober.stop()
            await sender.stop()
            passwords.close()
            db.dispose()

    routes = [
        *health_routes,
        *dashboard_routes,
        *account_routes,
        *oidc_routes,
        *organization_routes,
        *federation_routes,
        *notifications_routes,
        *notifications_api_routes,
        *consent_routes,
        *privacy_officer_routes,
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(WebShellMiddleware, settings=settings),
            Middleware(DatabaseOutage),
            Middleware(SessionLoader),
            Middleware(UnreadBadge),
        ],
        exception_handlers={HTTPException: http_exception_handler, Exception: server_error_handler},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.json_paths = ("/api/", *MACHINE_PATHS)  # error pages answer JSON there (web.wants_json)
    app.state.db = db
    app.state.passwords = passwords
    app.state.notifications = notifications
    app.state.client_keys = client_keys.RemoteKeySets()  # private_key_jwt clients' jwks_uri
    return app


def create_app_from_env() -> Starlette:
    """Factory used by ``portail serve`` workers: settings from the environment, migrations done."""
    return create_app(load_settings(), migrate=False)
