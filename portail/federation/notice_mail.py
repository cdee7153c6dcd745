"""Mail the federation sends about its decisions and its nodes' health.

One template (``templates/mail/federation_notice``) carries a French source message with its
parameters, an optional reason and link; each recipient reads it in their own language. A hoster is
written to at its contact address and to each of its ``hoster-admin`` people; federation
administrators are told when a decision awaits them.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, select

from portail import mail
from portail.accounts.models import Member, Membership
from portail.config import Settings
from portail.federation.models import Hoster, HosterPerson
from portail.federation.rules import federation_admins

log = logging.getLogger("portail.federation")

Recipient = tuple[str, str, str]  # email, locale, name


def send(
    settings: Settings,
    recipients: list[Recipient],
    subject: str,
    message: str,
    *,
    reason: str = "",
    link: str = "",
    **params: Any,
) -> int:
    """Send one notice to each distinct address; a delivery failure is logged, never raised."""
    seen: set[str] = set()
    sent = 0
    for address, locale, name in recipients:
        key = address.casefold()
        if not address or key in seen:
            continue
        seen.add(key)
        try:
            mail.send(
                settings,
                address,
                "federation_notice",
                locale,
                subject=subject,
                subject_params=params,
                message=message,
                params=params,
                reason=reason,
                link=link,
                name=name,
            )
            sent += 1
        except OSError:
            log.warning("federation notice to %s could not be delivered", address)
    return sent


def hoster_recipients(db: Session, settings: Settings, hoster: Hoster) -> list[Recipient]:
    people = db.exec(
        select(Member)
        .join(HosterPerson, HosterPerson.member_id == Member.id)  # type: ignore[arg-type]
        .where(HosterPerson.hoster_id == hoster.id, HosterPerson.role == "hoster-admin")
    ).all()
    found: list[Recipient] = [(hoster.contact_email, settings.default_locale, hoster.name)]
    found += [(m.email, m.locale, m.name) for m in people if m.active]
    return found


def admin_recipients(db: Session) -> list[Recipient]:
    return [(m.email, m.locale, m.name) for m in federation_admins(db)]


def organization_admin_recipients(db: Session, organization_id: int) -> list[Recipient]:
    """The administrators of an organization or territory (the federation's when it has none)."""
    admins = db.exec(
        select(Member)
        .join(Membership, Membership.member_id == Member.id)  # type: ignore[arg-type]
        .where(Membership.organization_id == organization_id, Membership.role == "admin", Membership.status == "active")
        .limit(50)
    ).all()
    found = [(m.email, m.locale, m.name) for m in admins if m.active]
    return found or admin_recipients(db)
