"""The push API's domain: what an instance may send and how each item is answered.

Contract (``docs/notifications-api.md``): ``POST /api/v1/notifications`` with a bearer access token
the instance got through ``client_credentials`` with scope ``notifications:push``; the body is
``{"notifications": [item, …]}`` (at most ``notification_push_batch_max`` items); each item is
``{"id", "sub", "title", "body"?, "type"?, "link"?, "created_at"?}``. Members are addressed by the
``sub`` this instance's client knows (pairwise-aware). Each item is answered ``accepted``,
``duplicate`` (this instance already sent this ``id``: deliveries are idempotent), ``unknown_member``
or ``invalid`` (with an ``error`` saying why). Bodies and titles are reduced to plain text; a link
must be on the instance's own origin. A member who turned the instance off gets nothing, and the
instance is told ``accepted`` all the same (it must not learn members' preferences).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from portail.accounts.models import Member
from portail.config import Settings
from portail.db import utcnow
from portail.federation import provisioning
from portail.federation.models import Instance
from portail.notifications import inbox
from portail.notifications.models import Notification
from portail.notifications.plaintext import plain
from portail.oidc import subjects
from portail.oidc.models import OAuthClient, PairwiseSubject
from portail.web import json_body

SCOPE = provisioning.PUSH_SCOPE  # provisioned instances' clients get it when they push
STATUSES = ("accepted", "duplicate", "unknown_member", "invalid")
KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
MAX_ID = 255
MAX_TITLE = 300
MAX_BODY = 2000

SubjectResolver = Callable[[Session, OAuthClient, set[str]], dict[str, int]]


def resolve_subjects(session: Session, client: OAuthClient, subs: set[str]) -> dict[str, int]:
    """The active members these ``sub`` values designate for this client, in one query
    (pairwise: the sector's stored subjects, as ``oidc.subjects.member_for_subject`` reads them)."""
    wanted = [sub for sub in subs if 0 < len(sub) <= 64]
    if not wanted:
        return {}
    if client.subject_type == "pairwise":
        rows = session.exec(
            select(PairwiseSubject.sub, Member.id)
            .join(Member, col(Member.id) == col(PairwiseSubject.member_id))
            .where(
                PairwiseSubject.sector == subjects.sector_of(client),
                col(PairwiseSubject.sub).in_(wanted),
                col(Member.disabled_at).is_(None),
            )
        ).all()
    else:
        rows = session.exec(
            select(Member.public_id, Member.id).where(
                col(Member.public_id).in_(wanted), col(Member.disabled_at).is_(None)
            )
        ).all()
    return {str(sub): int(member_id) for sub, member_id in rows if member_id is not None}


class PushRejected(Exception):
    """The whole request is refused (JSON API error shape)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Pusher:
    instance: Instance
    client: OAuthClient


def pusher_for(session: Session, client_id: str) -> Pusher:
    """The active instance whose OIDC client is ``client_id``."""
    row = session.exec(
        select(Instance, OAuthClient)
        .join(OAuthClient, col(OAuthClient.client_id) == col(Instance.client_id))
        .where(Instance.client_id == client_id)
    ).first()
    if row is None:
        raise PushRejected("access_denied", "This client is not the client of a registered instance", 403)
    instance, client = row
    if instance.status != "active" or not client.active:
        raise PushRejected("access_denied", "This instance is not active in the registry", 403)
    return Pusher(instance, client)


def parse_batch(payload: Any, limit: int) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("notifications"), list):
        raise PushRejected("invalid_request", 'The body must be {"notifications": [...]}', 400)
    items: list[Any] = payload["notifications"]
    if not items:
        raise PushRejected("invalid_request", "The batch is empty", 400)
    if len(items) > limit:
        raise PushRejected("batch_too_large", f"At most {limit} notifications per request", 413)
    return items


def same_origin(link: str, base_url: str) -> bool:
    a, b = urlsplit(link), urlsplit(base_url)
    return a.scheme in ("https", "http") and (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _created(raw: Any, now: dt.datetime) -> dt.datetime | None:
    if raw is None:
        return now
    if not isinstance(raw, str):
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return min(value.astimezone(dt.UTC), now)


def _check(raw: Any, base_url: str, now: dt.datetime) -> tuple[dict[str, Any] | None, str]:
    """A row for ``inbox.deliver`` (without member_id), or None and the reason."""
    if not isinstance(raw, dict):
        return None, "item is not an object"
    unreadable = json_body.problem(raw)
    if unreadable:
        return None, unreadable
    ident, title, body = raw.get("id"), raw.get("title"), raw.get("body", "")
    kind, link = raw.get("type", "info"), raw.get("link")
    if not isinstance(ident, str) or not ident or len(ident) > MAX_ID:
        return None, f"id must be a string of 1 to {MAX_ID} characters"
    if not isinstance(raw.get("sub"), str) or not raw["sub"]:
        return None, "sub must be a non-empty string"
    if not isinstance(title, str) or not plain(title, MAX_TITLE):
        return None, "title must be a non-empty string"
    if not isinstance(body, str):
        return None, "body must be a string"
    if not isinstance(kind, str) or not KIND.match(kind):
        return None, "type must match ^[a-z0-9][a-z0-9_.-]{0,39}$"
    if link is not None and (not isinstance(link, str) or len(link) > 1000 or not same_origin(link, base_url)):
        return None, "link must be an absolute URL on the instance's own origin"
    created = _created(raw.get("created_at"), now)
    if created is None:
        return None, "created_at must be an RFC 3339 date-time with a time zone"
    return {
        "external_id": ident,
        "title": plain(title, MAX_TITLE),
        "body": plain(body, MAX_BODY),
        "kind": kind,
        "link": link,
        "origin": "push",
        "created_at": created,
        "received_at": now,
    }, ""


def accept(
    session: Session,
    settings: Settings,
    pusher: Pusher,
    items: list[Any],
    resolve: SubjectResolver = resolve_subjects,
) -> tuple[list[dict[str, Any]], list[inbox.Delivered]]:
    """Answer every item and deliver the valid ones; returns (answers in order, delivered rows). Items
    are checked one by one: an invalid one is answered with its ``index`` and the reason, the others
    go through."""
    now = utcnow()
    instance_id = pusher.instance.id or 0
    answers: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    pending: dict[str, int] = {}  # external id -> index in answers
    checked = [(raw, *_check(raw, pusher.instance.base_url, now)) for raw in items]
    members = resolve(session, pusher.client, {str(raw["sub"]) for raw, row, _ in checked if row is not None})
    for index, (raw, row, problem) in enumerate(checked):
        if row is None:
            answers.append({"index": index, "id": _echo(raw), "status": "invalid", "error": problem})
            continue
        ident = row["external_id"]
        if ident in pending:
            answers.append({"id": ident, "status": "duplicate"})
            continue
        member_id = members.get(str(raw["sub"]))
        if member_id is None:
            answers.append({"id": ident, "status": "unknown_member"})
            continue
        pending[ident] = len(answers)
        answers.append({"id": ident, "status": "accepted"})
        rows.append({**row, "member_id": member_id, "instance_id": instance_id})
    muted = inbox.muted(session, {r["member_id"] for r in rows}, instance_id)
    wanted = [r for r in rows if r["member_id"] not in muted]
    known = _known(session, instance_id, [r["external_id"] for r in wanted])
    for ident in known:
        answers[pending[ident]]["status"] = "duplicate"
    delivered = inbox.deliver(session, [r for r in wanted if r["external_id"] not in known])
    inserted = {d.external_id for d in delivered}
    for row in wanted:  # lost a race with a concurrent identical request
        if row["external_id"] not in inserted and row["external_id"] not in known:
            answers[pending[row["external_id"]]]["status"] = "duplicate"
    return answers, delivered


def _echo(raw: Any) -> str:
    """The ``id`` of an invalid item as it can be sent back ("" when it is not a clean string)."""
    ident = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(ident, str) or json_body.text_problem(ident):
        return ""
    return ident[:MAX_ID]


def _known(session: Session, instance_id: int, external_ids: list[str]) -> set[str]:
    if not external_ids:
        return set()
    rows = session.exec(
        select(Notification.external_id).where(
            Notification.instance_id == instance_id, col(Notification.external_id).in_(external_ids)
        )
    )
    return set(rows.all())
