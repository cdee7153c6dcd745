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

from portail import clock, metrics, monitoring
from portail import db as database
from portail.accounts import expiry, throttle
from portail.accounts.current import PendingStepGate, SessionLoader
from portail.accounts.extensions import AccountExtensions
from portail.accounts.mail_limits import MailLimiter
from portail.accounts.mfa.gate import SecondFactorGate
from portail.accounts.mfa.routes import routes as second_factor_routes
from portail.accounts.mfa.security_routes import routes as security_routes
from portail.accounts.organization_routes import routes as organization_routes
from portail.accounts.passwords import Passwords
from portail.accounts.routes import routes as account_routes
from portail.background import Runner
from portail.config import Settings, load_settings
from portail.consent import hooks as consent_hooks
from portail.consent import jobs as privacy_jobs
from portail.consent.officer_routes import routes as privacy_officer_routes
from portail.consent.routes import routes as consent_routes
from portail.dashboard.routes import routes as dashboard_routes
from portail.federation import startup as federation
from portail.federation.routes import routes as federation_routes
from portail.keycloak import bridge as keycloak_bridge
from portail.notifications import hub as notifications_hub
from portail.notifications.api import routes as notifications_api_routes
from portail.notifications.routes import UnreadBadge
from portail.notifications.routes import routes as notifications_routes
from portail.oidc import backchannel, client_keys
from portail.oidc import keys as oidc_keys
from portail.oidc import subjects as oidc_subjects
from portail.oidc import tokens as oidc_tokens
from portail.oidc import usage as oidc_usage
from portail.oidc.extensions import ProviderExtensions
from portail.oidc.routes import MACHINE_PATHS
from portail.oidc.routes import routes as oidc_routes
from portail.request_log import RequestLog, configure_logging
from portail.web import STATIC, WebShellMiddleware, http_exception_handler, server_error_handler
from portail.web.health import routes as health_routes
from portail.web.lanes import PagesOnly
from portail.web.outage import DatabaseOutage

log = logging.getLogger("portail")

# Pages that stay open while a member has a pending step (a changed privacy policy to accept): read,
# accept or refuse the policy, log out, see, export or delete one's data, withdraw a consent, stop
# mail, follow a mailed link, choose a language. ``/authorize`` asks for the step itself (prompts.py).
OPEN_DURING_STEPS = (
    "/widget/menu.json",  # answers 403 action_required itself, with the CORS headers the tool needs
    "/privacy",
    "/privacy/",
    "/terms",
    "/login",
    "/logout",
    "/end-session",
    "/language",
    "/verify",
    "/password/",
    "/account/data",
    "/account/data/ledger",
    "/account/data/access",
    "/account/data/export",
    "/account/data/export/",
    "/account/data/delete",
    "/account/data/delete/cancel",
    "/account/data/tools/",
    "/notifications/stream",
    "/notifications/unsubscribe/",
    "/widget/",
    "/authorize",
    "/authorize/resume/",
)


# Pages that administer others: their users must have a second factor (setting mfa_required_for_admins).
ADMINISTERING_PAGES = (
    "/admin",
    "/privacy-officer",
    "/federation/admin",
    "/federation/hosters/{slug}",
    "/federation/instances",
    "/federation/links",
    "/federation/organizations",
    "/account/api-tokens",  # personal API tokens can carry an administrator's scopes
)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Starlette:
    settings = settings or load_settings()
    db = database.Database(settings)
    extensions = AccountExtensions().attach(db)  # what the packages above accounts plug into it
    provider = ProviderExtensions().attach(db)  # what the packages above the OpenID provider plug into it
    passwords = Passwords(settings)
    keycloak_bridge.install(passwords, settings)  # members whose password a Keycloak realm still holds
    consent_hooks.install(extensions, settings)
    if migrate:
        database.check_connection(db.engine)
        database.upgrade(db.engine)
    key_ring = oidc_keys.install(db, settings)  # this application's signing keys, carried by its sessions
    oidc_usage.install(db)  # access-log counts, written once a second (portail/oidc/usage.py)
    extensions.on_session_end(oidc_tokens.on_session_end)
    extensions.set_username_source(oidc_subjects.username_for)
    backchannel_setup = backchannel.install(db, extensions, settings)
    federation.register_hooks(extensions, provider, backchannel_setup)
    notifications = notifications_hub.install(db, settings, provider)

    # Every background task of the process, one leader for the periodic passes (portail/background.py).
    runner = Runner(settings, db)
    clock.register_tasks(runner, db)
    expiry.register_tasks(runner, db, settings)
    throttle.register_tasks(runner, db)
    oidc_tokens.register_tasks(runner, db)
    oidc_usage.register_tasks(runner, db)
    backchannel.register_tasks(runner, backchannel_setup, db, settings)
    federation.register_tasks(runner, settings, db)
    notifications.register_tasks(runner)
    wake_privacy_jobs = privacy_jobs.register_tasks(runner, db, settings)

    lifespans = 0

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Only the outermost lifespan runs the background tasks: a second client of the same app
        # (a test's second browser) must neither start them twice nor stop them under the first.
        nonlocal lifespans
        lifespans += 1
        if lifespans > 1:
            try:
                yield
            finally:
                lifespans -= 1
            return
        runner.start()
        try:
            yield
        finally:
            lifespans -= 1
            await runner.stop()
            await app.state.mail_limiter.aclose()
            await notifications.aclose()
            passwords.close()
            db.dispose()
            metrics.process_stopped()

    # The protocol endpoints first: Starlette tries routes in order, and a token, userinfo or
    # introspection request otherwise went through some thirty path patterns before its own (~5 % of
    # a userinfo's CPU). No other package's path shares a first segment with them, so no match changes.
    routes = [
        *health_routes,
        *oidc_routes,
        *dashboard_routes,
        *account_routes,
        *second_factor_routes,
        *security_routes,
        *organization_routes,
        *federation_routes,
        *notifications_routes,
        *notifications_api_routes,
        *consent_routes,
        *privacy_officer_routes,
        *monitoring.routes,
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLog, forwarded_allow_ips=settings.forwarded_allow_ips),
            Middleware(WebShellMiddleware, settings=settings),
            Middleware(DatabaseOutage),
            Middleware(
                PagesOnly,
                skip=MACHINE_PATHS,
                layers=[
                    Middleware(SessionLoader, protocol_paths=MACHINE_PATHS, deferred=("/authorize",)),
                    Middleware(SecondFactorGate, guarded=ADMINISTERING_PAGES),
                    Middleware(PendingStepGate, allowed=OPEN_DURING_STEPS),
                    Middleware(UnreadBadge, protocol_paths=MACHINE_PATHS),
                ],
            ),
        ],
        exception_handlers={HTTPException: http_exception_handler, Exception: server_error_handler},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.json_paths = ("/api/", *MACHINE_PATHS)  # error pages answer JSON there (web.wants_json)
    app.state.db = db
    app.state.extensions = extensions
    app.state.oidc = provider  # API scopes, access rules and consent notes (portail/oidc/extensions.py)
    app.state.keys = key_ring  # the signing keys (the JWKS route has no database session)
    app.state.passwords = passwords
    app.state.notifications = notifications
    app.state.background = runner
    app.state.wake_privacy_jobs = wake_privacy_jobs
    app.state.mail_limiter = MailLimiter(settings, db)
    app.state.client_keys = client_keys.RemoteKeySets()  # private_key_jwt clients' jwks_uri
    return app


def create_app_from_env() -> Starlette:
    """Factory used by ``portail serve`` workers: settings from the environment, migrations done."""
    configure_logging()
    return create_app(load_settings(), migrate=False)
