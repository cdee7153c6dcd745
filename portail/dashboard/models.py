"""Tables of the portal: how each member arranges their tiles (pinned, order)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from portail.db import utcnow


class TilePreference(SQLModel, table=True):
    """One member's arrangement of one tile: pinned or not, and its place in the order.

    A row exists only for tiles the member has pinned or moved; the others follow, by name.
    The unique (member_id, instance_id) index serves every read, which is always by member.
    """

    __tablename__ = "tile_preference"
    __table_args__ = (UniqueConstraint("member_id", "instance_id", name="uq_tile_preference_member_instance"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    instance_id: int = Field(foreign_key="instance.id", index=True)
    pinned: bool = Field(default=False)
    position: int | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)
