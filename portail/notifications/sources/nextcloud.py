"""Nextcloud: the notifications app's OCS API v2 (nextcloud/notifications docs/ocs-endpoint-v2.md).

- List: ``GET /ocs/v2.php/apps/notifications/api/v2/notifications`` with ``OCS-APIRequest: true`` and
  ``Accept: application/json``; the answer is ``{"ocs": {"meta": …, "data": [Notification…]}}`` (at most
  25). Portail calls it as the member with a short-lived JWT access token whose audience is the
  instance's OIDC client id (user_oidc accepts it with ``--check-bearer=1``).
- Conditional requests: the answer carries an ``ETag``; Portail sends it back as ``If-None-Match``
  and treats ``304`` as "nothing new" (servers since Nextcloud 21 may answer 200 anyway: items are
  then deduplicated by id). ``204`` means no app uses notifications.
- Dismiss: ``DELETE …/notifications/{id}`` (there is no separate "mark read").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.plaintext import plain
from portail.notifications.sources import Item, PullJob, PullResult

PATH = "/ocs/v2.php/apps/notifications/api/v2/notifications"


def _headers(job: PullJob) -> dict[str, str]:
    if not job.credential:
        raise SourceError("unauthorized", "no token for this member")
    return {
        "OCS-APIRequest": "true",
        "Accept": "application/json",
        "Authorization": f"Bearer {job.credential}",
    }


def _when(raw: Any) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _item(base_url: str, raw: Any) -> Item:
    if not isinstance(raw, dict) or not isinstance(raw.get("notification_id"), int):
        raise SourceError("error", "notification without notification_id")
    link = raw.get("link") if isinstance(raw.get("link"), str) and raw.get("link") else None
    return Item(
        native_id=str(raw["notification_id"]),
        title=plain(str(raw.get("subject") or raw.get("app") or "Nextcloud"), 300),
        body=plain(str(raw.get("message") or ""), 2000),
        kind=plain(str(raw.get("object_type") or raw.get("app") or "info"), 40) or "info",
        link=link or base_url,
        created_at=_when(raw.get("datetime")),
    )


async def pull(http: Fetcher, job: PullJob) -> PullResult:
    headers = _headers(job)
    if job.etag:
        headers["If-None-Match"] = job.etag
    reply = await http.request("GET", job.base_url + PATH, headers=headers, accept=(200, 204, 304))
    if reply.status == 304:
        return PullResult(etag=job.etag, not_modified=True)
    if reply.status == 204:
        return PullResult(etag=None)
    body = reply.json()
    try:
        data = body["ocs"]["data"]
    except (KeyError, TypeError) as exc:
        raise SourceError("error", "not an OCS answer") from exc
    if not isinstance(data, list):
        raise SourceError("error", "ocs.data is not a list")
    return PullResult(items=[_item(job.base_url, raw) for raw in data], etag=reply.headers.get("etag"))


async def dismiss(http: Fetcher, job: PullJob, native_id: str) -> bool:
    if not native_id.isdigit():
        return False
    await http.request("DELETE", f"{job.base_url}{PATH}/{native_id}", headers=_headers(job), accept=(200, 404))
    return True
