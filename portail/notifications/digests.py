"""Email digests: daily or weekly summaries of unread notifications, with a signed one-click unsubscribe.

A member chooses a digest per instance (``NotificationPreference.digest``). ``send_due`` gathers, per
member and period, the unread notifications of those instances received since the last digest, and
mails one message (skipped when there is nothing new). Every digest carries a signed link
(itsdangerous, no expiry, bound to the member's public id and the period) that turns those digests
off in one click, and the ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers (RFC 8058) so mail
clients can do it without opening a page. At scale ``send_due`` walks due members by keyset in
batches, committing each batch (resumable, bounded memory).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from email.message import EmailMessage

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from portail import mail
from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation.models import Instance
from portail.notifications.models import Notification, NotificationPreference

log = logging.getLogger("portail.notifications")
PERIODS = {"daily": dt.timedelta(days=1), "weekly": dt.timedelta(days=7)}
SLACK = dt.timedelta(minutes=30)  # a digest sent a little early still counts for its period
MAX_ITEMS = 50
BATCH = 200  # members per digest batch


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="portail.notifications.unsubscribe")


def unsubscribe_token(settings: Settings, member: Member, period: str) -> str:
    return str(_signer(settings).dumps({"m": member.public_id, "p": period}))


def unsubscribe_url(settings: Settings, member: Member, period: str) -> str:
    return f"{settings.issuer}/notifications/unsubscribe/{unsubscribe_token(settings, member, period)}"


def read_token(settings: Settings, token: str) -> tuple[str, str] | None:
    try:
        data = _signer(settings).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("p") not in PERIODS or not isinstance(data.get("m"), str):
        return None
    return data["m"], data["p"]


def unsubscribe(session: Session, settings: Settings, token: str) -> int | None:
    """Turn off the member's digests of that period; None for a bad token, else how many were on."""
    found = read_token(settings, token)
    if found is None:
        return None
    public_id, period = found
    member = session.exec(select(Member).where(Member.public_id == public_id)).first()
    if member is None:
        return 0
    rows = session.exec(
        select(NotificationPreference).where(
            NotificationPreference.member_id == member.id, NotificationPreference.digest == period
        )
    ).all()
    for row in rows:
        row.digest = "none"
        row.updated_at = utcnow()
        session.add(row)
    return len(rows)


def due_members(session: Session, period: str, cutoff: dt.datetime, after: int, limit: int) -> list[int]:
    """The next ``limit`` members (by id, after ``after``) with a digest of ``period`` due: a keyset
    walk of the ``(digest, member_id)`` index."""
    rows = session.exec(
        select(NotificationPreference.member_id)
        .where(
            NotificationPreference.digest == period,
            NotificationPreference.enabled == True,  # noqa: E712
            (col(NotificationPreference.last_digest_at).is_(None))
            | (col(NotificationPreference.last_digest_at) <= cutoff),
            col(NotificationPreference.member_id) > after,
        )
        .distinct()
        .order_by(col(NotificationPreference.member_id))
        .limit(limit)
    ).all()
    return [int(m) for m in rows]


def send_due(
    session: Session,
    settings: Settings,
    period: str | None = None,
    now: dt.datetime | None = None,
    *,
    batch: int = BATCH,
) -> int:
    """Send every digest that is due; returns the number of mails sent.

    Due members are read ``batch`` at a time (keyset on member id), so memory holds one batch of
    mails whatever the member count. Each batch's marks are committed before its mails go out: no
    transaction (and, on SQLite, no write lock) stays open while mail is sent, and a crash loses at
    most that batch's digests, never doubles them. Run again, it resumes with the members not yet
    marked."""
    now = now or utcnow()
    sent = 0
    for name in [period] if period else list(PERIODS):
        cutoff = now - PERIODS[name] + SLACK
        after = 0
        while member_ids := due_members(session, name, cutoff, after, batch):
            after = member_ids[-1]
            messages = _compose_batch(session, settings, member_ids, name, cutoff, now)
            session.commit()
            for message in messages:
                if message is not None:
                    mail.deliver(settings, message)
                    sent += 1
            session.expunge_all()  # keep memory flat across batches
            if len(member_ids) < batch:
                break
    return sent


def _compose_batch(
    session: Session, settings: Settings, member_ids: list[int], period: str, cutoff: dt.datetime, now: dt.datetime
) -> list[EmailMessage | None]:
    """Mark these members' due digest preferences as sent up to ``now``; the digests to mail.

    A fixed number of queries per batch, whatever its size: the preferences, the members, their
    unread notifications (at most ``2 × MAX_ITEMS`` per member, through a window), and one update
    of the marks."""
    prefs = session.exec(
        select(NotificationPreference).where(
            col(NotificationPreference.member_id).in_(member_ids),
            NotificationPreference.digest == period,
            NotificationPreference.enabled == True,  # noqa: E712
            (col(NotificationPreference.last_digest_at).is_(None))
            | (col(NotificationPreference.last_digest_at) <= cutoff),
        )
    ).all()
    since: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    for pref in prefs:
        since[pref.member_id][pref.instance_id] = pref.last_digest_at or now - PERIODS[period]
    if prefs:
        session.execute(
            update(NotificationPreference)
            .where(col(NotificationPreference.id).in_([p.id for p in prefs]))
            .values(last_digest_at=now)
            .execution_options(synchronize_session=False)
        )
    found = session.exec(select(Member).where(col(Member.id).in_(member_ids))).all()
    readers = {m.id: m for m in found if m.active and m.verified and m.id in since}
    items = _unread(session, since, list(readers))
    messages: list[EmailMessage | None] = []
    for member_id in member_ids:
        member = readers.get(member_id)
        mine = items.get(member_id, [])[:MAX_ITEMS]
        messages.append(_message(settings, member, mine, period) if member is not None and mine else None)
    return messages


def _unread(
    session: Session, since: dict[int, dict[int, dt.datetime]], member_ids: list[int]
) -> dict[int, list[tuple[Notification, Instance]]]:
    """Each member's unread notifications of their digest tools received since their last digest,
    newest first: one query for the batch, at most ``2 × MAX_ITEMS`` rows per member."""
    if not member_ids:
        return {}
    oldest = min(t for m in member_ids for t in since[m].values())
    instances = {i for m in member_ids for i in since[m]}
    rank = (
        func.row_number()
        .over(partition_by=col(Notification.member_id), order_by=col(Notification.created_at).desc())
        .label("rank")
    )
    ranked = (
        select(col(Notification.id), rank)
        .where(
            col(Notification.member_id).in_(member_ids),
            col(Notification.instance_id).in_(instances),
            col(Notification.read_at).is_(None),
            col(Notification.dismissed_at).is_(None),
            col(Notification.received_at) > oldest,
        )
        .subquery()
    )
    rows = session.exec(
        select(Notification, Instance)
        .join(ranked, ranked.c.id == col(Notification.id))
        .join(Instance, col(Instance.id) == col(Notification.instance_id))
        .where(ranked.c.rank <= MAX_ITEMS * 2)
        .order_by(col(Notification.member_id), col(Notification.created_at).desc())
    ).all()
    items: dict[int, list[tuple[Notification, Instance]]] = defaultdict(list)
    for note, instance in rows:
        limit = since[note.member_id].get(note.instance_id)
        if limit is not None and note.received_at > limit:
            items[note.member_id].append((note, instance))
    return items


def _message(
    settings: Settings, member: Member, items: list[tuple[Notification, Instance]], period: str
) -> EmailMessage:
    link = unsubscribe_url(settings, member, period)
    message = mail.compose(
        settings,
        member.email,
        "notifications_digest",
        member.locale,
        {
            "subject": "Vos notifications de la journée" if period == "daily" else "Vos notifications de la semaine",
            "member": member,
            "items": items,
            "period": period,
            "inbox_url": f"{settings.issuer}/notifications",
            "unsubscribe_url": link,
        },
    )
    message["List-Unsubscribe"] = f"<{link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message
