"""Rules shared by the federation's domain modules: who is acting (``Actor``) and what they may do
(federation administrator, hoster people, organization administrators), the refusal type, slugs,
and Québec's seventeen administrative regions.

Roles: a federation administrator is a Portail administrator or a member with the
``federation-admin`` role (``Member.roles``). A hoster's people are ``hoster-admin`` (manages the
hoster's people and API credentials) or ``hoster-member`` (registers and runs nodes). An organization
or territory administrator is an active ``Membership`` with role ``admin``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, col, or_, select

from portail.accounts.models import Member, Membership
from portail.federation.models import HosterPerson

FEDERATION_ADMIN_ROLE = "federation-admin"
HOSTER_ROLES = ("hoster-admin", "hoster-member")


class FederationError(Exception):
    """A refused federation operation; ``message`` is a French source string, ``params`` fill it.

    ``status`` is the HTTP status a route should answer with; ``code`` the JSON API error code.
    """

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request", **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params
        self.status = status
        self.code = code


def not_found(what: str = "") -> FederationError:
    return FederationError("Introuvable.", status=404, code="not_found")


def forbidden() -> FederationError:
    return FederationError("Vous n’avez pas le droit de faire cela.", status=403, code="forbidden")


@dataclass(frozen=True)
class Actor:
    """Who acts: a member, the CLI (``member_id=None``, administrator), or a hoster's API client."""

    member_id: int | None
    federation_admin: bool = False
    hoster_client: int | None = None  # the hoster whose client_credentials token is used
    ip_address: str = ""

    @classmethod
    def for_member(cls, member: Member, ip_address: str = "") -> Actor:
        return cls(member_id=member.id, federation_admin=is_federation_admin(member), ip_address=ip_address)

    @classmethod
    def cli(cls) -> Actor:
        return cls(member_id=None, federation_admin=True)


def is_federation_admin(member: Member | None) -> bool:
    return member is not None and member.active and member.has_role(FEDERATION_ADMIN_ROLE)


def require_federation_admin(actor: Actor) -> None:
    if not actor.federation_admin:
        raise forbidden()


def hoster_role(db: Session, member_id: int | None, hoster_id: int) -> str | None:
    if member_id is None:
        return None
    person = db.exec(
        select(HosterPerson).where(HosterPerson.hoster_id == hoster_id, HosterPerson.member_id == member_id)
    ).first()
    return person.role if person else None


def administers_a_hoster(db: Session, member: Member) -> bool:
    """Is the member an administrator of some hoster (their role administers others: second factor)?"""
    found = db.exec(
        select(HosterPerson.id).where(HosterPerson.member_id == member.id, HosterPerson.role == "hoster-admin")
    ).first()
    return found is not None


def can_run_hoster(db: Session, actor: Actor, hoster_id: int | None, *, admin: bool = False) -> bool:
    """May ``actor`` act for the hoster (its people, its API client, or a federation administrator)?"""
    if actor.federation_admin:
        return True
    if hoster_id is None:
        return False
    if actor.hoster_client == hoster_id:
        return True
    role = hoster_role(db, actor.member_id, hoster_id)
    return role == "hoster-admin" if admin else role in HOSTER_ROLES


def require_hoster(db: Session, actor: Actor, hoster_id: int | None, *, admin: bool = False) -> None:
    if not can_run_hoster(db, actor, hoster_id, admin=admin):
        raise forbidden()


def is_organization_admin(db: Session, member_id: int | None, organization_id: int) -> bool:
    if member_id is None:
        return False
    found = db.exec(
        select(Membership.id).where(
            Membership.organization_id == organization_id,
            Membership.member_id == member_id,
            Membership.role == "admin",
            Membership.status == "active",
        )
    ).first()
    return found is not None


def federation_admins(db: Session) -> list[Member]:
    """Members to tell about decisions awaiting a federation administrator."""
    query = select(Member).where(
        or_(col(Member.is_admin).is_(True), col(Member.roles).contains(FEDERATION_ADMIN_ROLE)),
        col(Member.disabled_at).is_(None),
    )
    return [m for m in db.exec(query.limit(50)) if is_federation_admin(m)]


def slugify(text: str, fallback: str = "noeud") -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60]
    return slug or fallback


SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")


def valid_slug(slug: str) -> bool:
    return bool(SLUG_RE.match(slug))


Sluggable = TypeVar("Sluggable", bound=SQLModel)


def by_slug(db: Session, model: type[Sluggable], slug: str) -> Sluggable:
    """The row of ``model`` (a table with a ``slug`` column) named ``slug``; a 404 refusal otherwise,
    without a query when the slug is not even well formed."""
    if not valid_slug(slug):
        raise not_found()
    found = db.exec(select(model).where(getattr(model, "slug") == slug)).first()  # noqa: B009
    if found is None:
        raise not_found()
    return found
