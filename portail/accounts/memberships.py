"""Joining an organization: join requests approved by its administrators, and invitations by email.

- **Join request.** A member asks to join (``requested``); the organization's administrators are told
  by mail; one of them approves (``active``, the member is told) or refuses (the row goes away).
  Asking to join an organization that already invited you accepts the invitation.
- **Invitation.** An administrator invites an email address with a role. The address receives a
  signed link (``INVITATION_DAYS`` days). If the address already has an account, a pending
  ``invited`` membership also appears on that member's "My organizations" page, where they accept
  or decline; the administrator can withdraw it. If it has none yet, nothing is stored: the person
  creates an account with that address, then opens the link. The link works only for the account
  whose address it was sent to, so a forwarded link is useless to anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from portail import mail
from portail.accounts.members import AccountError, audit, email_key, get_by_email, normalize_email
from portail.accounts.models import Member, Membership, Organization
from portail.accounts.organizations import ROLES, OrganizationNotFound, admins_of, membership_of, require_manager
from portail.config import Settings
from portail.web import N_

INVITATION_DAYS = 14


@dataclass(frozen=True)
class Invitation:
    """What a valid invitation link says."""

    organization: Organization
    role: str
    email_key: str
    had_account: bool


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="portail.organization-invitation")


def _add(db: Session, row: Membership) -> Membership:
    """Insert a membership; a concurrent insert of the same pair loses cleanly."""
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError as exc:
        raise AccountError("Une demande existe déjà pour cette organisation.") from exc
    return row


# ---------------------------------------------------------------- join requests


def request_to_join(db: Session, settings: Settings, member: Member, organization: Organization, base_url: str) -> str:
    """Ask to join; returns the resulting status (``requested``, or ``active`` if an invitation was waiting)."""
    org_id = organization.id or 0
    row = membership_of(db, org_id, member.id or 0)
    if row is not None and row.status == "active":
        raise AccountError("Vous êtes déjà membre de cette organisation.")
    if row is not None and row.status == "requested":
        return "requested"
    if row is not None and row.status == "invited":
        return accept_invitation(db, member, organization)
    _add(db, Membership(organization_id=org_id, member_id=member.id or 0, role="member", status="requested"))
    audit(
        db,
        "organization.join_requested",
        actor_id=member.id,
        member_id=member.id,
        subject_type="organization",
        subject_id=str(org_id),
    )
    for admin in admins_of(db, org_id):
        mail.send(
            settings,
            admin.email,
            "organization_join_request",
            admin.locale,
            subject=N_("Demande d’adhésion à %(organization)s"),
            subject_params={"organization": organization.name},
            name=admin.name,
            requester=member.name,
            organization=organization.name,
            link=f"{base_url}/organizations/{organization.slug}#requests",
        )
    return "requested"


def approve(
    db: Session, settings: Settings, actor: Member, organization: Organization, member_public_id: str, base_url: str
) -> Member:
    require_manager(db, actor, organization)
    person = _member(db, member_public_id)
    row = membership_of(db, organization.id or 0, person.id or 0)
    if row is None or row.status != "requested":
        raise OrganizationNotFound("Aucune demande en attente pour cette personne.")
    row.status = "active"
    db.add(row)
    audit(
        db,
        "organization.request_approved",
        actor_id=actor.id,
        member_id=person.id,
        subject_type="organization",
        subject_id=str(organization.id),
    )
    mail.send(
        settings,
        person.email,
        "organization_join_approved",
        person.locale,
        subject=N_("Bienvenue dans %(organization)s"),
        subject_params={"organization": organization.name},
        name=person.name,
        organization=organization.name,
        link=f"{base_url}/",
    )
    return person


def _member(db: Session, public_id: str) -> Member:
    person = db.exec(select(Member).where(Member.public_id == public_id)).first()
    if person is None:
        raise OrganizationNotFound("Cette personne ne fait pas partie de l’organisation.")
    return person


# ---------------------------------------------------------------- invitations


def invite(
    db: Session,
    settings: Settings,
    actor: Member,
    organization: Organization,
    email: str,
    role: str,
    base_url: str,
) -> str:
    """Invite an address; returns ``invited`` (an account exists) or ``mailed`` (no account yet)."""
    require_manager(db, actor, organization)
    if role not in ROLES:
        raise AccountError("Rôle inconnu.")
    address = normalize_email(email)
    invitee = get_by_email(db, address)
    status = "mailed"
    if invitee is not None:
        row = membership_of(db, organization.id or 0, invitee.id or 0)
        if row is not None and row.status == "active":
            raise AccountError("Cette personne est déjà membre.")
        if row is not None:
            row.status, row.role = "invited", role  # a pending request is superseded by the invitation
            db.add(row)
        else:
            _add(
                db,
                Membership(
                    organization_id=organization.id or 0, member_id=invitee.id or 0, role=role, status="invited"
                ),
            )
        status = "invited"
    # "a": the address had an account, so a pending row exists and withdrawing it voids the link.
    token = _signer(settings).dumps(
        {"o": organization.id, "e": email_key(address), "r": role, "a": status == "invited"}
    )
    audit(
        db,
        "organization.invited",
        actor_id=actor.id,
        member_id=invitee.id if invitee else None,
        subject_type="organization",
        subject_id=str(organization.id),
        reason=role,
    )
    mail.send(
        settings,
        address,
        "organization_invitation",
        invitee.locale if invitee else actor.locale,
        subject=N_("Invitation à rejoindre %(organization)s"),
        subject_params={"organization": organization.name},
        inviter=actor.name,
        organization=organization.name,
        role=role,
        days=INVITATION_DAYS,
        has_account=invitee is not None,
        link=f"{base_url}/organizations/invitation?token={token}",
        signup_link=f"{base_url}/signup",
    )
    return status


def read_invitation(db: Session, settings: Settings, member: Member, token: str) -> Invitation:
    """Check an invitation link for this member; raises ``AccountError`` with the reason."""
    try:
        data = _signer(settings).loads(token, max_age=INVITATION_DAYS * 86400)
    except SignatureExpired as exc:
        raise AccountError("Cette invitation a expiré. Demandez-en une nouvelle.") from exc
    except BadSignature as exc:
        raise AccountError("Cette invitation est invalide.") from exc
    if not isinstance(data, dict) or data.get("r") not in ROLES or not isinstance(data.get("o"), int):
        raise AccountError("Cette invitation est invalide.")
    if data.get("e") != member.email_key:
        raise AccountError("Cette invitation a été envoyée à une autre adresse que celle de votre compte.")
    organization = db.get(Organization, data["o"])
    if organization is None:
        raise OrganizationNotFound("Cette organisation n’existe pas.")
    return Invitation(
        organization=organization, role=str(data["r"]), email_key=str(data["e"]), had_account=bool(data.get("a"))
    )


def answer_link(db: Session, settings: Settings, member: Member, token: str, accept: bool) -> Invitation:
    """Accept or decline through the mailed link (works whether or not the row already exists)."""
    invitation = read_invitation(db, settings, member, token)
    org_id = invitation.organization.id or 0
    row = membership_of(db, org_id, member.id or 0)
    if row is not None and row.status == "active":
        raise AccountError("Vous êtes déjà membre de cette organisation.")
    if invitation.had_account and (row is None or row.status != "invited"):
        raise AccountError("Cette invitation a été retirée ou a déjà reçu une réponse.")
    if not accept:
        if row is not None and row.status == "invited":
            db.delete(row)
        audit(
            db,
            "organization.invitation_declined",
            actor_id=member.id,
            member_id=member.id,
            subject_type="organization",
            subject_id=str(org_id),
        )
        return invitation
    if row is None:
        row = _add(db, Membership(organization_id=org_id, member_id=member.id or 0, role=invitation.role))
    elif row.status == "requested":
        row.role = invitation.role
    row.status = "active"
    db.add(row)
    audit(
        db,
        "organization.invitation_accepted",
        actor_id=member.id,
        member_id=member.id,
        subject_type="organization",
        subject_id=str(org_id),
    )
    return invitation


def accept_invitation(db: Session, member: Member, organization: Organization) -> str:
    """Accept a pending ``invited`` membership from the "My organizations" page."""
    row = membership_of(db, organization.id or 0, member.id or 0)
    if row is None or row.status != "invited":
        raise OrganizationNotFound("Aucune invitation en attente pour cette organisation.")
    row.status = "active"
    db.add(row)
    audit(
        db,
        "organization.invitation_accepted",
        actor_id=member.id,
        member_id=member.id,
        subject_type="organization",
        subject_id=str(organization.id),
    )
    return "active"
