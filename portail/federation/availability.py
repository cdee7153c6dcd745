"""What Portail may honestly say about an instance's availability, from what the prober recorded.

Five states, each shown with its own words, icon and colour (never colour alone):

- ``demo``: a demonstration entry. Declared with ``demo = true`` in instances.toml, or recognised from
  a base URL under a name reserved never to resolve (RFC 2606 / RFC 6761: ``.example``, ``.invalid``,
  ``example.com|net|org``) that Portail never reached. Never probed, never "down". ``.test`` and
  ``.localhost`` are left out on purpose: RFC 6761 lets a lab's resolver answer them, so they are
  probed like any name.
- ``new``: never reached yet: not probed yet, or every probe so far failed. A newly declared
  instance may still be being set up; a member is not told it broke.
- ``up``: the last probe reached it.
- ``degraded``: the last probe reached it, but slower than ``probe_degraded_ms`` or with a partial
  answer (probes.py says which); members can still use it.
- ``down``: it was reached once (``last_up_at``) and the last probe failed.

The raw ``health`` column (unknown | up | degraded | down) stays what the prober saw; pages, the directory's
JSON and the menu widget show ``state()``. ``uptime()`` is the share of the last ``UPTIME_DAYS``
days' probes that reached an instance (``ProbeSample``, written by the prober).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from portail.db import utcnow
from portail.federation.models import Instance, ProbeSample

State = Literal["demo", "new", "up", "degraded", "down"]
REACHED = ("up", "degraded")
UPTIME_DAYS = 30
RESERVED_TLDS = ("example", "invalid")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


def reserved_host(base_url: str) -> bool:
    """True when the URL's host is under a name reserved for documentation and tests."""
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    labels = host.split(".")
    return labels[-1] in RESERVED_TLDS or any(host == d or host.endswith("." + d) for d in RESERVED_DOMAINS)


def probed(instance: Instance) -> bool:
    """Whether the prober should try it: never a declared demo, never a name that cannot resolve."""
    return not (instance.demo or reserved_host(instance.base_url))


def state(instance: Instance) -> State:
    reached = instance.health in REACHED or instance.last_up_at is not None
    if instance.demo or (not reached and reserved_host(instance.base_url)):
        return "demo"
    if instance.health == "up":
        return "up"
    if instance.health == "degraded":
        return "degraded"
    if instance.health == "down" and instance.last_up_at is not None:
        return "down"
    return "new"


def uptime(db: Session, instance_ids: list[int]) -> dict[int, float]:
    """Share of the last ``UPTIME_DAYS`` days' probes that reached each instance (up or degraded), in
    percent; instances not probed in that time are absent. One grouped query."""
    if not instance_ids:
        return {}
    cutoff = utcnow() - dt.timedelta(days=UPTIME_DAYS)
    reached = func.sum(case((col(ProbeSample.state) != "down", 1), else_=0))
    rows = db.exec(
        select(ProbeSample.instance_id, func.count(), reached)  # type: ignore[call-overload]
        .where(col(ProbeSample.instance_id).in_(instance_ids), col(ProbeSample.at) >= cutoff)
        .group_by(col(ProbeSample.instance_id))
    ).all()
    return {instance_id: round(100.0 * (ok or 0) / total, 1) for instance_id, total, ok in rows if total}
