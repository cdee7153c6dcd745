"""The purge of an account whose grace period is over: tell the tools, revoke, log out, erase.

One transaction per account, so that a failure leaves the account whole (the request goes back to
``pending`` and the next run tries again) and success leaves nothing half-deleted:

1. claim the request (``pending`` → ``purging``, a conditional update: one worker purges it);
2. find every tool that knew the member (consents, grants, sessions, data-access log) and, for each
   that registered an account-events endpoint (``Instance.account_events_uri``, else the client's
   ``account_events_uri`` registration metadata), sign a SET about the ``sub`` *that tool* knows and
   queue its delivery (``events.py``; sent after commit by the background jobs, retried);
3. revoke every grant of the member (refresh and access tokens stop working), queue a
   back-channel logout to each tool, and unlink the notification sources (the Matrix devices Portail
   opened are logged out after the commit, ``log_out_devices``);
4. erase the member from every table (``erasure.py``);
5. keep the request with its reference and dates, without the member (``member_id`` emptied), and an
   audit entry saying that a purge happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import Session, col, select, update

from portail.accounts import sessions
from portail.accounts.members import audit
from portail.accounts.models import Member
from portail.config import Settings
from portail.consent import deletion, erasure, events
from portail.consent.models import DeletionRequest
from portail.db import Database, utcnow
from portail.federation.models import Instance
from portail.notifications import linking
from portail.notifications.fetcher import SourceError, guarded
from portail.notifications.models import SourceLink
from portail.notifications.sources import matrix
from portail.oidc import backchannel, keys, subjects, tokens, usage
from portail.oidc.models import Consent, DataAccess, Grant, OAuthClient, SessionClient

log = logging.getLogger("portail.consent.purge")
METADATA_KEY = "account_events_uri"


@dataclass(frozen=True)
class PurgeReport:
    reference: str
    tools_known: int
    tools_notified: int
    grants_revoked: int
    # Matrix devices Portail opened to read the member's notifications: (homeserver, access token),
    # to log out once the purge is committed (``log_out_devices``); held in memory only.
    devices: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def known_clients(db: Session, member_id: int) -> list[OAuthClient]:
    """Every client that ever received something about the member."""
    usage.write_pending(db)  # this node's last second of accesses names tools too
    ids: set[str] = set()
    for model in (Consent, Grant, SessionClient, DataAccess):
        ids.update(c for c in db.exec(select(model.client_id).where(model.member_id == member_id).distinct()) if c)
    if not ids:
        return []
    return list(db.exec(select(OAuthClient).where(col(OAuthClient.client_id).in_(ids)).order_by(OAuthClient.client_id)))


def events_endpoint(db: Session, client: OAuthClient) -> str | None:
    """Where a tool receives account events: its instance's endpoint, else its client metadata."""
    instance = db.exec(select(Instance).where(Instance.client_id == client.client_id)).first()
    if instance is not None and instance.account_events_uri:
        return instance.account_events_uri
    value = client.extra_metadata.get(METADATA_KEY)
    return value if isinstance(value, str) and value else None


def _signer(db: Session) -> events.Signer:
    """Signs account events with the keys of the application whose unit of work ``db`` is."""
    ring = keys.ring_of(db)
    return lambda payload: ring.sign(dict(payload), typ=events.SET_TYP, alg="RS256")


def recipients(db: Session, settings: Settings, member: Member, clients: list[OAuthClient]) -> list[events.Recipient]:
    found = []
    for client in clients:
        uri = events_endpoint(db, client)
        if uri:
            sub = subjects.subject_for(db, settings.secret_key, member, client)
            found.append(events.Recipient(client.client_id, uri, sub))
    return found


def purge(db: Session, settings: Settings, request_id: int) -> PurgeReport | None:
    """Purge one account (see the module docstring); ``None`` when the request is not pending any more."""
    claimed = db.exec(
        update(DeletionRequest)
        .where(col(DeletionRequest.id) == request_id, col(DeletionRequest.status) == "pending")
        .values(status="purging")
    )
    if claimed.rowcount != 1:
        return None
    request = db.get(DeletionRequest, request_id)
    assert request is not None
    member = db.get(Member, request.member_id) if request.member_id else None
    if member is None or member.id is None:
        request.status, request.purged_at, request.member_id = "purged", utcnow(), None
        db.add(request)
        return PurgeReport(request.reference, 0, 0, 0)
    member_id = member.id
    clients = known_clients(db, member_id)
    notified = events.schedule(
        db, settings, recipients(db, settings, member, clients), _signer(db), reference=request.reference
    )
    revoked = 0
    sessions.end_member_sessions(db, member_id, "account-deleted")
    for client in clients:
        revoked += tokens.revoke_grants(db, client_id=client.client_id, member_id=member_id, reason="account-deleted")
        backchannel.logout_member_from_client(db, member_id, client.client_id)
    devices = []
    for link in db.exec(select(SourceLink).where(SourceLink.member_id == member_id)).all():
        removed = linking.remove_link(db, settings, member_id, link.instance_id)
        if removed is not None and removed[0] == "matrix":
            devices.append((removed[1], removed[2]))
    erasure.erase(db, member_id)
    request = db.get(DeletionRequest, request_id)
    assert request is not None
    request.status, request.purged_at, request.tools_notified = "purged", utcnow(), notified
    request.member_id = None
    db.add(request)
    audit(
        db,
        "privacy.account_purged",
        subject_type="deletion_request",
        subject_id=request.reference,
        reason=f"tools known {len(clients)}, told {notified}",
    )
    return PurgeReport(request.reference, len(clients), notified, revoked, tuple(devices))


async def log_out_devices(settings: Settings, reports: list[PurgeReport]) -> int:
    """Log out the Matrix devices of purged members (best effort: the rows are already gone)."""
    devices = [device for report in reports for device in report.devices]
    if not devices:
        return 0
    fetcher = guarded(settings)  # the instances' URLs are hoster-supplied
    done = 0
    try:
        for base_url, access_token in devices:
            try:
                await matrix.logout(fetcher, base_url, access_token)
                done += 1
            except SourceError as exc:
                log.warning("Matrix device of a purged member not logged out at %s: %s", base_url, exc.message)
    finally:
        await fetcher.aclose()
    return done


def purge_due(database: Database, settings: Settings) -> list[PurgeReport]:
    """Purge every account whose grace period is over, each in its own transaction (blocking)."""
    reports = []
    for request_id in database.call(deletion.due):
        try:
            report = database.call(purge, settings, request_id)
        except Exception:
            log.exception("purge of deletion request %s failed; it stays pending", request_id)
            continue
        if report is not None:
            reports.append(report)
    return reports
