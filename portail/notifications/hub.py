"""The notification hub of one process: aggregator, live broker, push limiter and background loop.

``create_app`` builds one ``Hub`` (``app.state.notifications``), starts it in the lifespan and
closes it at shutdown. The background loop runs every ``notification_refresh_seconds`` but does work
only in the process that holds leadership (``leadership.py``): refresh what is due (``schedule.py``),
batch after batch for most of the interval, send the digests that are due (in batches), purge
notifications past ``notification_retention_days`` (in chunks) and the webhook event ids as old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlmodel import Session

from portail import metrics
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import Database
from portail.notifications import digests, inbox, push, webhooks, withdrawals
from portail.notifications.aggregator import Aggregator
from portail.notifications.inbox import Delivered
from portail.notifications.leadership import Leadership
from portail.notifications.live import Broker
from portail.notifications.ratelimit import PushLimiter
from portail.oidc import claims, subjects, tokens
from portail.oidc.models import OAuthClient
from portail.outbound import PinnedTransport

log = logging.getLogger("portail.notifications")


def install(db: Database, settings: Settings) -> Hub:
    """Build the process's hub, declare the push scope to the OpenID provider, and tell members
    when a tool they use is withdrawn."""
    claims.register_scope(push.SCOPE, "Envoyer des notifications aux membres")
    withdrawals.install()
    return Hub(db, settings)


def nextcloud_token(session: Session, settings: Settings, member: Member, client: OAuthClient) -> str:
    """A short-lived JWT access token for ``member`` whose audience is the Nextcloud client's id
    (accepted by user_oidc with ``--check-bearer=1``). user_oidc's self-encoded validator takes the
    Nextcloud user id from the claim its ``--mapping-uid`` names — ``preferred_username`` in the occ
    command Portail hands out (``federation/snippets.py``) — so the token carries it, as the ID token
    the member logged in to Nextcloud with did."""
    sub = subjects.subject_for(session, settings.secret_key, member, client)
    profile = claims.profile_values(session, member, client, ["preferred_username"])
    return tokens.issue_access_token(settings, client, sub=sub, scope="openid profile email", profile=profile).token


class Hub:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.broker = Broker(settings)
        self.limiter = PushLimiter(settings, db)
        self.aggregator = Aggregator(
            db, settings, minter=nextcloud_token, on_delivered=self.announce, transport=PinnedTransport(settings)
        )
        self.leadership = Leadership(db, settings)
        self._loop: asyncio.Task[None] | None = None

    async def announce(self, delivered: list[Delivered]) -> None:
        await self.broker.publish((d.member_id, d.id) for d in delivered)

    async def tick(self) -> None:
        """One pass of background work, if this process leads."""
        leads = await self.leadership.acquire()
        metrics.LEADER.labels("notifications").set(1 if leads else 0)
        if not leads:
            return
        # Batch after batch of due work (schedule.py) for most of one interval, then digests and purge.
        deadline = time.monotonic() + max(self.settings.notification_refresh_seconds, 5) * 0.8
        batch = 200
        while await self.aggregator.refresh_due(batch) == batch and time.monotonic() < deadline:
            pass
        await self.db.run(digests.send_due, self.settings)
        await self.db.run(inbox.purge, self.settings.notification_retention_days)
        await self.db.run(webhooks.purge, self.settings.notification_retention_days)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(self.settings.notification_refresh_seconds, 5))
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifications background pass failed")

    def start_background(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop
            self._loop = None
        await self.aggregator.aclose()
        await self.broker.aclose()
        await self.limiter.aclose()
        await self.leadership.release()
