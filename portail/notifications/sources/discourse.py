"""Discourse: ``GET /notifications.json`` with a User API key (header ``User-Api-Key``).

The key is obtained by the member through Discourse's User API key flow (meta.discourse.org
"User API keys specification", scope ``notifications``) and stored sealed. The answer is
``{"notifications": [{id, notification_type, read, created_at, topic_id, post_number, slug,
fancy_title?, data: {topic_title, display_username, …}}], …}``. Dismiss marks the notification read:
``PUT /notifications/mark-read.json`` with ``{"id": …}``. Unlinking revokes the key
(``POST /user-api-key/revoke`` with the key in ``User-Api-Key``). Discourse sends no ETag on this endpoint, so
Portail keeps the highest id it has seen as its since-token and skips older items. The answer's
``user_id`` (the member's id at Discourse) is kept on the link: the forum's webhook names members by it
(``webhooks.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.plaintext import plain
from portail.notifications.sources import Item, PullJob, PullResult

# Discourse's Notification.types (app/models/notification.rb), the common ones.
TYPES = {
    1: "mention",
    2: "reply",
    3: "quote",
    4: "edit",
    5: "like",
    6: "private_message",
    7: "invited_to_private_message",
    9: "posted",
    11: "linked",
    12: "badge",
    15: "group_mention",
    24: "bookmark_reminder",
}


def _headers(job: PullJob) -> dict[str, str]:
    if not job.credential:
        raise SourceError("unauthorized", "no User API key for this member")
    return {"User-Api-Key": job.credential, "Accept": "application/json"}


def notification_item(base_url: str, raw: Any) -> Item:
    """One notification as ``NotificationSerializer`` shows it (``notifications.json`` and webhooks)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise SourceError("error", "notification without id")
    data: dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
    type_code = raw.get("notification_type")
    kind = TYPES.get(type_code, "info") if isinstance(type_code, int) else "info"
    title = str(data.get("topic_title") or raw.get("fancy_title") or data.get("badge_name") or "Discourse")
    who = data.get("display_username") or data.get("username") or ""
    link = base_url
    if isinstance(raw.get("topic_id"), int):
        slug = raw.get("slug") if isinstance(raw.get("slug"), str) and raw.get("slug") else "-"
        link = f"{base_url}/t/{slug}/{raw['topic_id']}"
        if isinstance(raw.get("post_number"), int):
            link += f"/{raw['post_number']}"
    created = None
    if isinstance(raw.get("created_at"), str):
        try:
            created = dt.datetime.fromisoformat(raw["created_at"].replace("Z", "+00:00"))
        except ValueError:
            created = None
    return Item(
        native_id=str(raw["id"]),
        title=plain(title, 300),
        body=plain(f"{who} ({kind})" if who else kind, 2000),
        kind=kind,
        link=link,
        created_at=created,
        read=bool(raw.get("read")),
    )


async def pull(http: Fetcher, job: PullJob) -> PullResult:
    reply = await http.request("GET", f"{job.base_url}/notifications.json", headers=_headers(job))
    body = reply.json()
    raw_items = body.get("notifications") if isinstance(body, dict) else None
    if not isinstance(raw_items, list):
        raise SourceError("error", "no notifications list")
    since = int(job.since) if job.since and job.since.isdigit() else 0
    items = [
        item for item in (notification_item(job.base_url, raw) for raw in raw_items) if int(item.native_id) > since
    ]
    newest = max([int(i.native_id) for i in items], default=since)
    owners = {raw.get("user_id") for raw in raw_items if isinstance(raw, dict)}
    account_id = str(owners.pop()) if len(owners) == 1 and isinstance(next(iter(owners)), int) else None
    return PullResult(items=items, since=str(newest) if newest else job.since, account_id=account_id)


async def mark_read(http: Fetcher, job: PullJob, native_id: str | None) -> bool:
    """``PUT /notifications/mark-read.json`` with ``{"id": …}``, or with no id for all of them."""
    if native_id is not None and not native_id.isdigit():
        return False
    body = {"id": int(native_id)} if native_id is not None else {}
    await http.request("PUT", f"{job.base_url}/notifications/mark-read.json", headers=_headers(job), json_body=body)
    return True


async def dismiss(http: Fetcher, job: PullJob, native_id: str) -> bool:
    return await mark_read(http, job, native_id)


async def revoke(http: Fetcher, base_url: str, key: str) -> None:
    """Revoke the key at Discourse when the member unlinks (``POST /user-api-key/revoke`` with the key)."""
    await http.request(
        "POST",
        f"{base_url}/user-api-key/revoke",
        headers={"User-Api-Key": key, "Accept": "application/json"},
        accept=(200, 403, 404),
    )
