"""Who belongs where: organizations and territories, their members and roles, and a member's territory.

An organization (or a territory: an MRC, a neighbourhood) has members with a role (``member`` or
``admin``). A ``Membership`` row is in one of three states:

- ``requested``: the member asked to join; an administrator approves (→ ``active``) or refuses (row deleted);
- ``invited``: an administrator invited the member; the member accepts (→ ``active``) or declines (deleted);
- ``active``: the member belongs; leaving or being removed deletes the row.

Federation administrators (``Member.is_admin``) may act as administrators of every organization.
An organization never loses its last administrator through leave, removal or demotion.
The flows that send mail (invitations, join requests) live in ``memberships.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from portail.accounts.members import AccountError, audit, touch
from portail.accounts.models import Member, Membership, Organization

ROLES = ("member", "admin")
ROSTER_PAGE = 50


class OrganizationNotFound(AccountError):
    """The organization, or the person in it, does not exist (or is not visible to this member)."""


class OrganizationForbidden(AccountError):
    """The member may not do this in this organization."""


@dataclass(frozen=True)
class MyMembership:
    organization: Organization
    role: str
    status: str


@dataclass(frozen=True)
class RosterEntry:
    member: Member
    membership: Membership


@dataclass(frozen=True)
class Roster:
    """One page of an organization's active members, plus every pending request and invitation."""

    active: list[RosterEntry]
    requested: list[RosterEntry]
    invited: list[RosterEntry]
    total_active: int
    page: int
    pages: int


def get_organization(db: Session, slug: str) -> Organization:
    organization = db.exec(select(Organization).where(Organization.slug == slug)).first()
    if organization is None:
        raise OrganizationNotFound("Cette organisation n’existe pas.")
    return organization


def membership_of(db: Session, organization_id: int, member_id: int) -> Membership | None:
    return db.exec(
        select(Membership).where(Membership.organization_id == organization_id, Membership.member_id == member_id)
    ).first()


def memberships_of(db: Session, member_id: int) -> list[MyMembership]:
    """Every membership of a member (active, invited, requested) with its organization, by name."""
    rows = db.exec(
        select(Membership, Organization)
        .join(Organization, col(Organization.id) == Membership.organization_id)
        .where(Membership.member_id == member_id)
    ).all()
    found = [MyMembership(organization=org, role=m.role, status=m.status) for m, org in rows]
    return sorted(found, key=lambda item: item.organization.name.casefold())


def can_manage(db: Session, member: Member, organization_id: int) -> bool:
    if member.is_admin:
        return True
    row = membership_of(db, organization_id, member.id or 0)
    return row is not None and row.status == "active" and row.role == "admin"


def require_manager(db: Session, member: Member, organization: Organization) -> None:
    if not can_manage(db, member, organization.id or 0):
        raise OrganizationForbidden("Seuls les administrateurs de l’organisation peuvent faire cela.")


def admins_of(db: Session, organization_id: int, limit: int = 20) -> list[Member]:
    rows = db.exec(
        select(Member)
        .join(Membership, col(Membership.member_id) == Member.id)
        .where(
            Membership.organization_id == organization_id,
            Membership.role == "admin",
            Membership.status == "active",
        )
        .limit(limit)
    )
    return list(rows)


def _admin_count(db: Session, organization_id: int) -> int:
    return len(admins_of(db, organization_id, limit=2))


def roster(db: Session, organization: Organization, page: int = 1) -> Roster:
    """A page of active members (by arrival) and the pending rows; reads only this organization's rows."""
    org_id = organization.id or 0
    total = db.exec(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == org_id, Membership.status == "active")
    ).one()
    pages = max(1, -(-int(total) // ROSTER_PAGE))
    page = min(max(1, page), pages)
    base = (
        select(Member, Membership)
        .join(Membership, col(Membership.member_id) == Member.id)
        .where(Membership.organization_id == org_id)
        .order_by(col(Membership.id))
    )
    active = db.exec(
        base.where(Membership.status == "active").offset((page - 1) * ROSTER_PAGE).limit(ROSTER_PAGE)
    ).all()
    pending = db.exec(base.where(col(Membership.status).in_(("requested", "invited"))).limit(200)).all()
    return Roster(
        active=[RosterEntry(member=m, membership=ms) for m, ms in active],
        requested=[RosterEntry(member=m, membership=ms) for m, ms in pending if ms.status == "requested"],
        invited=[RosterEntry(member=m, membership=ms) for m, ms in pending if ms.status == "invited"],
        total_active=int(total),
        page=page,
        pages=pages,
    )


def _target(db: Session, organization: Organization, member_public_id: str) -> tuple[Member, Membership]:
    person = db.exec(select(Member).where(Member.public_id == member_public_id)).first()
    row = membership_of(db, organization.id or 0, person.id or 0) if person else None
    if person is None or row is None:
        raise OrganizationNotFound("Cette personne ne fait pas partie de l’organisation.")
    return person, row


def set_role(db: Session, actor: Member, organization: Organization, member_public_id: str, role: str) -> Member:
    require_manager(db, actor, organization)
    if role not in ROLES:
        raise AccountError("Rôle inconnu.")
    person, row = _target(db, organization, member_public_id)
    if row.status != "active":
        raise AccountError("Cette personne n’est pas encore membre.")
    if row.role == "admin" and role != "admin" and _admin_count(db, organization.id or 0) < 2:
        raise AccountError("L’organisation doit garder au moins un administrateur.")
    row.role = role
    db.add(row)
    audit(
        db,
        "organization.role_changed",
        actor_id=actor.id,
        member_id=person.id,
        subject_type="organization",
        subject_id=str(organization.id),
        reason=role,
    )
    return person


def remove(db: Session, actor: Member, organization: Organization, member_public_id: str) -> Member:
    """An administrator removes a member, withdraws an invitation or refuses a request."""
    require_manager(db, actor, organization)
    person, row = _target(db, organization, member_public_id)
    if row.status == "active" and row.role == "admin" and _admin_count(db, organization.id or 0) < 2:
        raise AccountError("L’organisation doit garder au moins un administrateur.")
    action = {"active": "organization.member_removed", "invited": "organization.invitation_withdrawn"}.get(
        row.status, "organization.request_refused"
    )
    db.delete(row)
    audit(
        db,
        action,
        actor_id=actor.id,
        member_id=person.id,
        subject_type="organization",
        subject_id=str(organization.id),
    )
    return person


def leave(db: Session, member: Member, organization: Organization) -> str:
    """The member leaves, cancels their request or declines an invitation; returns the former status."""
    row = membership_of(db, organization.id or 0, member.id or 0)
    if row is None:
        raise OrganizationNotFound("Vous ne faites pas partie de cette organisation.")
    if row.status == "active" and row.role == "admin" and _admin_count(db, organization.id or 0) < 2:
        raise AccountError("Vous êtes le dernier administrateur : nommez-en un autre avant de partir.")
    status = row.status
    db.delete(row)
    audit(
        db,
        {"active": "organization.left", "invited": "organization.invitation_declined"}.get(
            status, "organization.request_cancelled"
        ),
        actor_id=member.id,
        member_id=member.id,
        subject_type="organization",
        subject_id=str(organization.id),
    )
    return status


# ---------------------------------------------------------------- territory (profile)


def territories(db: Session) -> list[Organization]:
    """Every territory, by region then name (for the profile's territory selector)."""
    rows = db.exec(select(Organization).where(Organization.kind == "territory").limit(2000))
    return sorted(rows, key=lambda t: (t.region or "99", t.name.casefold()))


def territory_of(db: Session, member: Member) -> Organization | None:
    if member.territory_id is None:
        return None
    return db.get(Organization, member.territory_id)


def set_territory(db: Session, member_id: int, territory_id: int | None) -> Organization | None:
    member = db.get(Member, member_id)
    if member is None:
        raise OrganizationNotFound("Ce compte n’existe pas.")
    territory = None
    if territory_id is not None:
        territory = db.get(Organization, territory_id)
        if territory is None or territory.kind != "territory":
            raise AccountError("Ce territoire n’existe pas.")
    member.territory_id = territory_id
    touch(member)
    db.add(member)
    audit(
        db,
        "member.territory_changed",
        actor_id=member.id,
        member_id=member.id,
        subject_type="organization",
        subject_id=str(territory_id or ""),
    )
    return territory
