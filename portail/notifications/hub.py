"""The notification hub of one process: aggregator, live broker, push limiter and background task.

``create_app`` builds one ``Hub`` (``app.state.notifications``) and closes it at shutdown. Its
background task (``register_tasks``: a leader-only task of the background runner,
``portail/background.py``, every ``notification_refresh_seconds``, at least 5) refreshes what is due
(``schedule.py``), batch after batch for most of the interval, sends the digests that are due (in
batches), purges notifications past ``notification_retention_days`` (in chunks) and the webhook
event ids as old.
"""

from __future__ import annotations

import logging
import time

from sqlmodel import Session

from portail.accounts.models import Member
from portail.background import Runner, Task
from portail.config import Settings
from portail.db import Database
from portail.notifications import digests, inbox, push, webhooks, withdrawals
from portail.notifications.aggregator import Aggregator
from portail.notifications.inbox import Delivered
from portail.notifications.live import Broker
from portail.notifications.ratelimit import PushLimiter
from portail.oidc import claims, keys, subjects, tokens
from portail.oidc.extensions import ProviderExtensions
from portail.oidc.models import OAuthClient
from portail.outbound import PinnedTransport

log = logging.getLogger("portail.notifications")


def install(db: Database, settings: Settings, provider: ProviderExtensions) -> Hub:
    """Build the process's hub, declare the push scope to the application's OpenID provider, and tell
    members when a tool they use is withdrawn."""
    provider.register_scope(push.SCOPE, "Envoyer des notifications aux membres")
    withdrawals.install(db)
    return Hub(db, settings)


def nextcloud_token(session: Session, settings: Settings, member: Member, client: OAuthClient) -> str:
    """A short-lived JWT access token for ``member`` whose audience is the Nextcloud client's id
    (accepted by user_oidc with ``--check-bearer=1``). user_oidc's self-encoded validator takes the
    Nextcloud user id from the claim its ``--mapping-uid`` names — ``preferred_username`` in the occ
    command Portail hands out (``federation/snippets.py``) — so the token carries it, as the ID token
    the member logged in to Nextcloud with did."""
    sub = subjects.subject_for(session, settings.secret_key, member, client)
    profile = claims.profile_values(session, member, client, ["preferred_username"])
    return tokens.issue_access_token(
        keys.ring_of(session), settings, client, sub=sub, scope="openid profile email", profile=profile
    ).token


class Hub:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.broker = Broker(settings)
        self.limiter = PushLimiter(settings, db)
        self.aggregator = Aggregator(
            db, settings, minter=nextcloud_token, on_delivered=self.announce, transport=PinnedTransport(settings)
        )

    async def announce(self, delivered: list[Delivered]) -> None:
        await self.broker.publish((d.member_id, d.id) for d in delivered)

    @property
    def period(self) -> float:
        return float(max(self.settings.notification_refresh_seconds, 5))

    async def tick(self) -> None:
        """One pass of background work (the leading process's task)."""
        # Batch after batch of due work (schedule.py) for most of one interval, then digests and purge.
        deadline = time.monotonic() + self.period * 0.8
        batch = 200
        while await self.aggregator.refresh_due(batch) == batch and time.monotonic() < deadline:
            pass
        await self.db.run(digests.send_due, self.settings)
        await self.db.run(inbox.purge, self.settings.notification_retention_days)
        await self.db.run(webhooks.purge, self.settings.notification_retention_days)

    def register_tasks(self, runner: Runner) -> None:
        runner.add(Task("notifications", self.tick, every=self.period))

    async def aclose(self) -> None:
        await self.aggregator.aclose()
        await self.broker.aclose()
        await self.limiter.aclose()
