"""Matrix: a member's notifications from their homeserver (Matrix client-server API v1.x).

- Linking (see ``portail/notifications/linking.py``): the browser goes through the homeserver's SSO
  (``GET /_matrix/client/v3/login/sso/redirect/oidc-<idp_id>?redirectUrl=…``, spec "Client login via
  SSO"; ``idp_id`` is the node's provider identifier),
  Portail receives ``loginToken`` and exchanges it (``POST /_matrix/client/v3/login``,
  ``{"type": "m.login.token"}``) for a dedicated device and access token; unlinking logs that device
  out (``POST /_matrix/client/v3/logout``).
- Reading: ``GET /_matrix/client/v3/notifications?limit=…[&from=…]`` (spec "Listing notifications"),
  newest first, ``next_token`` paging towards older ones. Portail's since-token is the ``ts`` of the
  newest notification it has seen; it pages with ``from`` until it reaches it (at most ``MAX_PAGES``).
  Push actions with the ``highlight`` tweak (mentions) become ``mention``, the others ``message``.
- Read state (``read_state.py``): a private read receipt
  (``POST /_matrix/client/v3/rooms/{roomId}/receipt/m.read.private/{eventId}``, spec "Receipts", v1.4).
  The room is taken from the notification's ``matrix.to`` link, which this module builds.
- Pushers (spec "Push notifications"): ``POST /_matrix/client/v3/pushers/set`` registers Portail's
  push gateway for the member (``kind: http``, ``data.url`` ending in ``/_matrix/push/v1/notify``,
  no ``data.format`` so the homeserver sends the event's sender, type and content);
  ``kind: null`` removes it, found again by ``GET /_matrix/client/v3/pushers`` (Portail keeps only
  a hash of the pushkey). ``pushed_item`` reads a Push Gateway API ``notification`` (``gateway.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, unquote

from portail.notifications.fetcher import Fetcher, SourceError
from portail.notifications.plaintext import plain
from portail.notifications.sources import Item, PullJob, PullResult

MATRIX_TO = "https://matrix.to/#/"
PAGE = 50
MAX_PAGES = 3
NOTIFICATIONS = "/_matrix/client/v3/notifications"


def _auth(job: PullJob) -> dict[str, str]:
    if not job.credential:
        raise SourceError("unauthorized", "Matrix account not linked")
    return {"Authorization": f"Bearer {job.credential}", "Accept": "application/json"}


def _highlight(actions: Any) -> bool:
    return isinstance(actions, list) and any(
        isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True) for a in actions
    )


def _link(room_id: str, event_id: str) -> str:
    return f"{MATRIX_TO}{quote(room_id, safe='!:')}/{quote(event_id, safe='$:')}"


def _title(sender: str, event_type: Any) -> str:
    return plain(str((sender if event_type == "m.room.message" else f"{sender} · {event_type}") or "Matrix"), 300)


def _item(raw: Any) -> tuple[int, Item]:
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), dict):
        raise SourceError("error", "notification without event")
    event, room_id, ts = raw["event"], raw.get("room_id"), raw.get("ts")
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not isinstance(room_id, str) or not isinstance(ts, int):
        raise SourceError("error", "notification without event_id, room_id or ts")
    content = event.get("content") if isinstance(event.get("content"), dict) else {}
    sender = str(event.get("sender") or "")
    body = str(content.get("body")) if isinstance(content.get("body"), str) else ""
    kind = "mention" if _highlight(raw.get("actions")) else "message"
    return ts, Item(
        native_id=event_id,
        title=_title(sender, event.get("type")),
        body=plain(body, 2000),
        kind=kind,
        link=_link(room_id, event_id),
        created_at=dt.datetime.fromtimestamp(ts / 1000, dt.UTC),
        read=bool(raw.get("read")),
    )


async def pull(http: Fetcher, job: PullJob) -> PullResult:
    headers = _auth(job)
    seen = int(job.since) if job.since and job.since.isdigit() else 0
    items: list[Item] = []
    newest = seen
    token: str | None = None
    for _page in range(MAX_PAGES):
        params: dict[str, str | int] = {"limit": PAGE}
        if token:
            params["from"] = token
        body = (await http.request("GET", job.base_url + NOTIFICATIONS, headers=headers, params=params)).json()
        raw_items = body.get("notifications") if isinstance(body, dict) else None
        if not isinstance(raw_items, list):
            raise SourceError("error", "no notifications list")
        reached = False
        for raw in raw_items:
            ts, item = _item(raw)
            if ts <= seen:
                reached = True
                break
            newest = max(newest, ts)
            items.append(item)
        next_token = body.get("next_token")
        if reached or not seen or not isinstance(next_token, str) or not next_token:
            break
        token = next_token
    return PullResult(items=items, since=str(newest) if newest else None)


async def exchange_login_token(http: Fetcher, base_url: str, login_token: str) -> tuple[str, str, str]:
    """``m.login.token`` → (user_id, device_id, access_token) of a new device named for Portail."""
    reply = await http.request(
        "POST",
        f"{base_url}/_matrix/client/v3/login",
        json_body={"type": "m.login.token", "token": login_token, "initial_device_display_name": "Portail En commun"},
    )
    body = reply.json()
    values = [body.get(k) if isinstance(body, dict) else None for k in ("user_id", "device_id", "access_token")]
    if not all(isinstance(v, str) and v for v in values):
        raise SourceError("error", "login answer without user_id, device_id or access_token")
    return str(values[0]), str(values[1]), str(values[2])


async def logout(http: Fetcher, base_url: str, access_token: str) -> None:
    """Log the dedicated device out (its access token dies with it)."""
    await http.request(
        "POST",
        f"{base_url}/_matrix/client/v3/logout",
        headers={"Authorization": f"Bearer {access_token}"},
        json_body={},
        accept=(200, 401),
    )


def room_and_event(link: str) -> tuple[str, str] | None:
    """(room id, event id) of a link made by ``_item``, else None."""
    if not link.startswith(MATRIX_TO):
        return None
    parts = link[len(MATRIX_TO) :].split("/")
    if len(parts) != 2 or not parts[0].startswith("!") or not parts[1].startswith("$"):
        return None
    return unquote(parts[0]), unquote(parts[1])


async def mark_read(http: Fetcher, base_url: str, access_token: str, room_id: str, event_id: str) -> None:
    """A private read receipt up to ``event_id``: read for the member, not announced to the room."""
    room, event = quote(room_id, safe=""), quote(event_id, safe="")
    await http.request(
        "POST",
        f"{base_url}/_matrix/client/v3/rooms/{room}/receipt/m.read.private/{event}",
        headers={"Authorization": f"Bearer {access_token}"},
        json_body={},
    )


def pushed_item(notification: dict[str, Any], tweaks: Any) -> Item | None:
    """The item of a Push Gateway API ``notification`` (None for a badge-only update, which has no
    ``event_id``). The ``highlight`` tweak (a mention) makes it a ``mention``, as in ``pull``."""
    event_id, room_id = notification.get("event_id"), notification.get("room_id")
    if not isinstance(event_id, str) or not event_id or not isinstance(room_id, str) or not room_id:
        return None
    content = notification.get("content") if isinstance(notification.get("content"), dict) else {}
    body = content.get("body") if isinstance(content, dict) else None
    highlight = isinstance(tweaks, dict) and bool(tweaks.get("highlight"))
    return Item(
        native_id=event_id[:200],
        title=_title(str(notification.get("sender") or ""), notification.get("type")),
        body=plain(body if isinstance(body, str) else "", 2000),
        kind="mention" if highlight else "message",
        link=_link(room_id, event_id),
    )


async def set_pusher(http: Fetcher, base_url: str, access_token: str, *, app_id: str, pushkey: str, url: str) -> None:
    """Register an HTTP pusher for the device of ``access_token``; ``SourceError`` if refused."""
    await http.request(
        "POST",
        f"{base_url}/_matrix/client/v3/pushers/set",
        headers={"Authorization": f"Bearer {access_token}"},
        json_body={
            "kind": "http",
            "app_id": app_id,
            "pushkey": pushkey,
            "app_display_name": "Portail En commun",
            "device_display_name": "Portail",
            "lang": "fr",
            "data": {"url": url},
            "append": False,
        },
    )


async def remove_pusher(http: Fetcher, base_url: str, access_token: str, *, app_id: str, url: str) -> int:
    """Remove this member's pushers of ``app_id`` pointing at ``url``; returns how many."""
    headers = {"Authorization": f"Bearer {access_token}"}
    listed = (await http.request("GET", f"{base_url}/_matrix/client/v3/pushers", headers=headers)).json()
    pushers = listed.get("pushers") if isinstance(listed, dict) else None
    removed = 0
    for pusher in pushers if isinstance(pushers, list) else []:
        data = pusher.get("data") if isinstance(pusher, dict) else None
        if pusher.get("app_id") != app_id or not isinstance(data, dict) or data.get("url") != url:
            continue
        await http.request(
            "POST",
            f"{base_url}/_matrix/client/v3/pushers/set",
            headers=headers,
            json_body={"kind": None, "app_id": app_id, "pushkey": pusher.get("pushkey")},
        )
        removed += 1
    return removed
