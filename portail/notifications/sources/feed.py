"""Feeds: Atom (RFC 4287), RSS 2.0 and JSON Feed 1.1, fetched with conditional requests.

The feed is pulled once per instance (not per member) with ``If-None-Match`` / ``If-Modified-Since``
(RFC 9110 §13.1); its new entries go to the members who subscribed. XML is parsed with the standard
library only after refusing any document type declaration (``<!DOCTYPE``/``<!ENTITY``): with no DTD
there are no entity expansions ("billion laughs") and no external entities, the two attacks
defusedxml guards against.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import xml.etree.ElementTree as ET
from typing import Any

from portail.notifications.fetcher import Fetcher, Reply, SourceError
from portail.notifications.plaintext import plain
from portail.notifications.sources import Item, PullJob, PullResult

ATOM = "{http://www.w3.org/2005/Atom}"
MAX_ITEMS = 50


def _date(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _text(node: ET.Element | None) -> str:
    return "".join(node.itertext()) if node is not None else ""


def parse_xml(body: bytes) -> ET.Element:
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise SourceError("error", "feed declares a DTD or entities: refused")
    try:
        return ET.fromstring(body)  # noqa: S314 - no DTD, see parse_xml's guard above
    except ET.ParseError as exc:
        raise SourceError("error", "feed is not well-formed XML") from exc


def _atom(root: ET.Element) -> list[Item]:
    items = []
    for entry in root.findall(f"{ATOM}entry")[:MAX_ITEMS]:
        link = None
        for candidate in entry.findall(f"{ATOM}link"):
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate.get("href")
                break
        native = _text(entry.find(f"{ATOM}id")).strip() or link or _text(entry.find(f"{ATOM}title"))
        summary = entry.find(f"{ATOM}summary")
        items.append(
            Item(
                native_id=native[:200],
                title=plain(_text(entry.find(f"{ATOM}title")) or "—", 300),
                body=plain(_text(summary if summary is not None else entry.find(f"{ATOM}content")), 2000),
                kind="post",
                link=link,
                created_at=_date(_text(entry.find(f"{ATOM}published")) or _text(entry.find(f"{ATOM}updated"))),
            )
        )
    return items


def _rss(root: ET.Element) -> list[Item]:
    items = []
    for entry in root.findall("./channel/item")[:MAX_ITEMS]:
        link = _text(entry.find("link")).strip() or None
        native = _text(entry.find("guid")).strip() or link or _text(entry.find("title"))
        items.append(
            Item(
                native_id=native[:200],
                title=plain(_text(entry.find("title")) or "—", 300),
                body=plain(_text(entry.find("description")), 2000),
                kind="post",
                link=link,
                created_at=_date(_text(entry.find("pubDate"))),
            )
        )
    return items


def _json_feed(body: Any) -> list[Item]:
    if not isinstance(body, dict) or not str(body.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise SourceError("error", "not a JSON Feed")
    raw_items = body.get("items")
    if not isinstance(raw_items, list):
        raise SourceError("error", "JSON Feed without items")
    items = []
    for raw in raw_items[:MAX_ITEMS]:
        if not isinstance(raw, dict) or raw.get("id") in (None, ""):
            continue
        text = raw.get("summary") or raw.get("content_text") or raw.get("content_html") or ""
        items.append(
            Item(
                native_id=str(raw["id"])[:200],
                title=plain(str(raw.get("title") or text or "—"), 300),
                body=plain(str(text), 2000),
                kind="post",
                link=raw.get("url") if isinstance(raw.get("url"), str) else None,
                created_at=_date(raw.get("date_published") if isinstance(raw.get("date_published"), str) else None),
            )
        )
    return items


def parse(reply: Reply) -> list[Item]:
    content_type = reply.headers.get("content-type", "")
    stripped = reply.body.lstrip()
    if "json" in content_type or stripped.startswith(b"{"):
        return _json_feed(reply.json())
    root = parse_xml(reply.body)
    if root.tag == f"{ATOM}feed":
        return _atom(root)
    if root.tag == "rss":
        return _rss(root)
    raise SourceError("error", f"unknown feed format <{root.tag[:40]}>")


async def pull(http: Fetcher, job: PullJob) -> PullResult:
    if not job.url:
        raise SourceError("error", "instance has no feed_url")
    headers = {"Accept": "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9"}
    if job.etag:
        headers["If-None-Match"] = job.etag
    if job.since:
        headers["If-Modified-Since"] = job.since
    reply = await http.request("GET", job.url, headers=headers, accept=(200, 304))
    if reply.status == 304:
        return PullResult(etag=job.etag, since=job.since, not_modified=True)
    return PullResult(items=parse(reply), etag=reply.headers.get("etag"), since=reply.headers.get("last-modified"))
