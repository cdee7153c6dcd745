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
from typing import Any

from sqlmodel import Session, col, func, select

from portail.accounts.members import AccountError, audit, touch
from portail.accounts.models import Member, Membership, Organization

ROLES = ("member", "admin")
ROSTER_PAGE = 50
# The member count on the roster reads at most this many rows (plus one, to know it was capped).
ROSTER_COUNT_CAP = 1000


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
    """One page of an organization's active members, plus every pending request and invitation.

    Pages are keyset pages on ``Membership.id`` (never ``OFFSET``): ``after`` is the cursor this page
    started after (``None`` on the first page), ``next_after`` the cursor of the next page (``None``
    on the last one). ``total_active`` is exact up to ``ROSTER_COUNT_CAP``; beyond it
    ``count_capped`` is true and ``total_active`` is the cap.
    """

    active: list[RosterEntry]
    requested: list[RosterEntry]
    invited: list[RosterEntry]
    total_active: int
    count_capped: bool
    after: int | None
    next_after: int | None
    last: bool = False

    @property
    def first_page(self) -> bool:
        return self.after is None and not self.last

    @property
    def paged(self) -> bool:
        """Is there more than one page (so that the page shows its navigation)?"""
        return not self.first_page or self.next_after is not None


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


def active_count(db: Session, organization_id: int, cap: int = ROSTER_COUNT_CAP) -> tuple[int, bool]:
    """How many active members, reading at most ``cap + 1`` index entries: ``(count, capped)``;
    when capped, ``count`` is ``cap`` ("more than ``cap``")."""
    rows = (
        select(col(Membership.id))
        .where(Membership.organization_id == organization_id, Membership.status == "active")
        .limit(cap + 1)
        .subquery()
    )
    found = int(db.exec(select(func.count()).select_from(rows)).one())
    return (cap, True) if found > cap else (found, False)


def roster_page_statement(organization_id: int, after: int | None = None, *, last: bool = False) -> Any:
    """The statement of one keyset page of active members: ``ROSTER_PAGE + 1`` rows after the
    cursor (the extra row says a next page exists), or, for the last page, the final rows read
    backwards. Read through ``ix_membership_roster`` (organization_id, status, id)."""
    statement = (
        select(Member, Membership)
        .join(Membership, col(Membership.member_id) == Member.id)
        .where(Membership.organization_id == organization_id, Membership.status == "active")
    )
    if last:
        return statement.order_by(col(Membership.id).desc()).limit(ROSTER_PAGE)
    if after is not None:
        statement = statement.where(col(Membership.id) > after)
    return statement.order_by(col(Membership.id)).limit(ROSTER_PAGE + 1)


def roster(db: Session, organization: Organization, after: int | None = None, *, last: bool = False) -> Roster:
    """A keyset page of active members (by arrival: after the membership ``after``, or the last
    page) and the pending rows; reads only this organization's rows, never more than a page of
    them (plus the capped count)."""
    org_id = organization.id or 0
    total, capped = active_count(db, org_id)
    rows = list(db.exec(roster_page_statement(org_id, after, last=last)).all())
    if last:
        rows.reverse()
        next_after = None
    else:
        next_after = rows[ROSTER_PAGE - 1][1].id if len(rows) > ROSTER_PAGE else None
        rows = rows[:ROSTER_PAGE]
    pending = db.exec(
        select(Member, Membership)
        .join(Membership, col(Membership.member_id) == Member.id)
        .where(Membership.organization_id == org_id, col(Membership.status).in_(("requested", "invited")))
        .order_by(col(Membership.id))
        .limit(200)
    ).all()
    return Roster(
        active=[RosterEntry(member=m, membership=ms) for m, ms in rows],
        requested=[RosterEntry(member=m, membership=ms) for m, ms in pending if ms.status == "requested"],
        invited=[RosterEntry(member=m, membership=ms) for m, ms in pending if ms.status == "invited"],
        total_active=total,
        count_capped=capped,
        after=after,
        next_after=next_after,
        last=last,
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
