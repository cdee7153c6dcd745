"""Members brought in from another tool — the rows of a CSV file (``imports.py``) or of a Keycloak
realm (``portail/keycloak/realm_import.py``) — into the database, and what the operator is told.

Rows that passed their own checks (``Candidate``) go in batches of ``BATCH_SIZE``, one transaction
each (``apply_all``): a member whose address already exists (compared case-insensitively) is
reported and left alone (its name is updated only when asked), so bringing the same rows twice
changes nothing; a batch that loses a race (the same address created meanwhile) is replayed. A
member created without a password can be mailed an invitation to choose one (``send_invitations``,
paced under a per-minute limit). ``report_text`` and ``report_json`` are what the commands print.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portail import mail
from portail.accounts import links
from portail.accounts.members import audit, email_key, touch
from portail.accounts.models import AuditEvent, Member, Membership, Organization
from portail.config import Settings
from portail.db import Database, utcnow
from portail.web import N_, translate

BATCH_SIZE = 500
INVITATION_DAYS = 14
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


@dataclass(frozen=True)
class Candidate:
    """One member to bring in, checked on its own (organizations are checked against the database later)."""

    line: int
    email: str
    name: str
    password_hash: str = ""
    username: str = ""
    locale: str = "fr-CA"
    verified: bool = True
    created_at: dt.datetime | None = None
    organizations: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True)
class Refusal:
    """A line left out: ``reason`` is a French source message, ``params`` fill it."""

    line: int
    email: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    dry_run: bool
    lines: int = 0
    created: int = 0
    without_password: int = 0
    existing: list[tuple[int, str]] = field(default_factory=list)
    updated: list[tuple[int, str]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    invited: int = 0
    to_invite: list[int] = field(default_factory=list)  # ids of members created without a password


# ---------------------------------------------------------------- writing


def apply_batch(
    db: Session,
    batch: list[Candidate],
    report: Report,
    *,
    dry_run: bool,
    update_names: bool = False,
    refuse_unknown_organizations: bool = True,
    source: str = "csv",
) -> None:
    """Bring one batch in (or, with ``dry_run``, only count what would happen) in the caller's transaction."""
    keys = [candidate.key for candidate in batch]
    existing = {m.email_key: m for m in db.exec(select(Member).where(col(Member.email_key).in_(keys)))}
    slugs = {slug for candidate in batch for slug in candidate.organizations}
    organizations = dict(
        db.exec(select(Organization.slug, Organization.id).where(col(Organization.slug).in_(slugs))).all()
        if slugs
        else []
    )
    created: list[tuple[Candidate, Member]] = []
    now = utcnow()
    for candidate in batch:
        unknown = [slug for slug in candidate.organizations if slug not in organizations]
        if unknown and refuse_unknown_organizations:
            reason = N_("Organisation inconnue : %(slug)s.")
            report.refused.append(Refusal(candidate.line, candidate.email, reason, {"slug": ", ".join(unknown)}))
            continue
        member = existing.get(candidate.key)
        if member is not None:
            if update_names and member.name != candidate.name:
                report.updated.append((candidate.line, member.email))
                if not dry_run:
                    member.name = candidate.name
                    touch(member)
                    db.add(member)
                    audit(db, "member.import_renamed", member_id=member.id, subject_type="member", reason=source)
            else:
                report.existing.append((candidate.line, member.email))
            continue
        report.created += 1
        report.without_password += 0 if candidate.password_hash else 1
        if dry_run:
            continue
        created.append((candidate, _new_member(candidate, now)))
    if not created:
        return
    db.add_all([member for _candidate, member in created])
    db.flush()
    # the audit events and memberships of a batch in two multi-row INSERTs (no ORM object per row)
    events = [_imported_event(member.id or 0, source, now) for _candidate, member in created]
    db.execute(insert(AuditEvent), events)
    joined = [
        {"organization_id": organizations[slug], "member_id": member.id, "role": "member", "status": "active",
         "created_at": now}
        for candidate, member in created
        for slug in candidate.organizations
        if slug in organizations
    ]  # fmt: skip
    if joined:
        db.execute(insert(Membership), joined)
    report.to_invite += [member.id or 0 for candidate, member in created if not candidate.password_hash]


def _imported_event(member_id: int, source: str, now: dt.datetime) -> dict[str, Any]:
    """The row ``members.audit`` would write for ``member.imported``."""
    return {
        "at": now,
        "actor_id": None,
        "action": "member.imported",
        "category": "member",
        "subject_type": "member",
        "subject_id": str(member_id),
        "member_id": member_id,
        "reason": source,
        "ip_address": "",
    }


def _new_member(candidate: Candidate, now: dt.datetime) -> Member:
    return Member(
        email=candidate.email,
        email_key=candidate.key,
        name=candidate.name,
        password_hash=candidate.password_hash,
        locale=candidate.locale,
        email_verified_at=(candidate.created_at or now) if candidate.verified else None,
        created_at=candidate.created_at or now,
        updated_at=now,
        disabled_at=None if candidate.enabled else now,
    )


def apply_all(
    database: Database,
    rows: Iterable[Candidate | Refusal],
    report: Report,
    *,
    update_names: bool = False,
    refuse_unknown_organizations: bool = True,
    source: str = "csv",
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Bring every row in, one transaction per batch; refusals are recorded as they come."""
    batch: list[Candidate] = []

    def flush() -> None:
        if not batch:
            return
        for attempt in (1, 2):
            # work on a copy: a batch that loses a race (the same address created meanwhile) is replayed
            trial = Report(dry_run=report.dry_run)
            try:
                with database.session() as db:
                    apply_batch(
                        db,
                        batch,
                        trial,
                        dry_run=report.dry_run,
                        update_names=update_names,
                        refuse_unknown_organizations=refuse_unknown_organizations,
                        source=source,
                    )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        _merge(report, trial)
        batch.clear()
        if progress is not None:
            progress(report.lines)

    for row in rows:
        report.lines += 1
        if isinstance(row, Refusal):
            report.refused.append(row)
            continue
        batch.append(row)
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()
    report.refused.sort(key=lambda refusal: refusal.line)
    return report


def _merge(report: Report, part: Report) -> None:
    report.created += part.created
    report.without_password += part.without_password
    report.existing += part.existing
    report.updated += part.updated
    report.refused += part.refused
    report.to_invite += part.to_invite


# ---------------------------------------------------------------- reporting


def _bilingual(message: str, params: dict[str, Any]) -> str:
    return f"{translate('fr-CA', message, **params)} / {translate('en', message, **params)}"


def report_json(report: Report) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "lines": report.lines,
        "created": report.created,
        "without_password": report.without_password,
        "existing": [{"line": line, "email": email} for line, email in report.existing],
        "updated": [{"line": line, "email": email} for line, email in report.updated],
        "refused": [
            {
                "line": r.line,
                "email": r.email,
                "reason": translate("en", r.reason, **r.params),
                "raison": translate("fr-CA", r.reason, **r.params),
            }
            for r in report.refused
        ],
        "invited": report.invited,
    }


def report_text(report: Report, shown: int = 20) -> str:
    out = [
        f"Lignes lues / lines read: {report.lines}",
        f"Membres créés / members created: {report.created} "
        f"(sans mot de passe / without a password: {report.without_password})",
        f"Déjà présents, laissés tels quels / already present, left as they are: {len(report.existing)}",
    ]
    out += [f"  ligne / line {line}: {email}" for line, email in report.existing[:shown]]
    if len(report.existing) > shown:
        out.append(f"  … (+{len(report.existing) - shown}, --json pour tout / for all)")
    if report.updated:
        out.append(f"Noms mis à jour / names updated: {len(report.updated)}")
    out.append(f"Lignes refusées / lines refused: {len(report.refused)}")
    out += [f"  ligne / line {r.line}: {_bilingual(r.reason, r.params)} ({r.email})" for r in report.refused]
    if report.invited:
        out.append(f"Invitations envoyées / invitations sent: {report.invited}")
    if report.dry_run:
        out.append("Essai : rien n’a été changé / dry run: nothing was changed")
    return "\n".join(out)


# ---------------------------------------------------------------- invitations


def send_invitations(
    database: Database,
    settings: Settings,
    member_ids: list[int],
    *,
    per_minute: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Mail each member created without a password a link to choose one, at most ``per_minute`` a minute."""
    sent = 0
    for start in range(0, len(member_ids), per_minute):
        began = clock()
        with database.session() as db:
            for member_id in member_ids[start : start + per_minute]:
                member = db.get(Member, member_id)
                if member is None or member.password_hash or not member.active:
                    continue
                lifetime = dt.timedelta(days=INVITATION_DAYS)
                token = links.issue(db, settings.secret_key, member, "reset", lifetime)
                mail.send(
                    settings,
                    member.email,
                    "import_invitation",
                    member.locale,
                    subject=N_("Votre compte Portail vous attend"),
                    name=member.name,
                    link=f"{settings.issuer}/password/reset?token={token}",
                    days=INVITATION_DAYS,
                )
                sent += 1
        if start + per_minute < len(member_ids):
            sleep(max(0.0, 60.0 - (clock() - began)))
    return sent
