"""Bringing members in from another tool: the CSV file of ``portail users import`` (format in
``docs/import-format.md``) and the rows the Keycloak bridge builds.

The file is read twice: once to check that it is UTF-8 and count its lines (for the progress),
then row by row. Each row is checked on its own (``read_rows``): a refused row is reported with its
line number and reason, and never stops the others. Rows that pass go to the database in batches
of ``BATCH_SIZE``, one transaction each (``apply_batch``): a member whose address already exists
(compared case-insensitively) is reported and left alone (its name is updated only when asked), so
importing the same file twice changes nothing. A password hash is stored only when
``passwords.legacy_scheme`` knows its format; an empty one makes a member without a password, who
can be mailed an invitation to choose one (``send_invitations``, paced under a per-minute limit).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portail import mail
from portail.accounts import links
from portail.accounts.members import AccountError, audit, clean_name, email_key, normalize_email, touch
from portail.accounts.models import Member, Membership, Organization
from portail.accounts.passwords import legacy_scheme
from portail.config import Settings
from portail.db import Database, utcnow
from portail.web import N_, translate

REQUIRED_COLUMNS = ("email", "name", "password_hash")
OPTIONAL_COLUMNS = ("username", "locale", "verified", "created_at", "organizations")
BATCH_SIZE = 500
MAX_LINE_CHARS = 8192
INVITATION_DAYS = 14
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_TRUE = {"true", "1", "yes", "oui", "vrai", "t", "y"}
_FALSE = {"false", "0", "no", "non", "faux", "f", "n"}


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


# ---------------------------------------------------------------- reading the file


def check_file(path: Path) -> int:
    """Check that ``path`` is UTF-8 text; returns its number of lines. Raises ``AccountError``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                where = newlines + 1 + chunk[: exc.start].count(b"\n")
                raise AccountError("Le fichier n’est pas en UTF-8 (ligne %(line)s).", line=where) from exc
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise AccountError("Le fichier n’est pas en UTF-8 (ligne %(line)s).", line=newlines + 1) from exc
    return newlines + (0 if last == b"\n" else 1)


def read_header(reader: Iterator[list[str]]) -> list[str]:
    """The column names of the header row; a separator other than the comma, a missing, unknown or
    repeated column stops the import before anything is written."""
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration as exc:
        raise AccountError("Le fichier est vide.") from exc
    except csv.Error as exc:
        raise AccountError("Fichier CSV illisible à la ligne %(line)s.", line=1) from exc
    if len(header) == 1 and ";" in header[0]:
        raise AccountError(
            "Les colonnes sont séparées par des points-virgules : enregistrez le fichier avec des virgules."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise AccountError("Colonne obligatoire absente : %(columns)s.", columns=", ".join(missing))
    unknown = [name for name in header if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise AccountError("Colonne inconnue : %(columns)s.", columns=", ".join(unknown))
    if len(set(header)) != len(header):
        raise AccountError("Une colonne apparaît deux fois dans l’en-tête.")
    return header


def read_rows(stream: TextIO) -> Iterator[Candidate | Refusal]:
    """Each data row of the CSV, checked: a ``Candidate`` or the ``Refusal`` of its line."""
    reader = csv.reader(stream, strict=True)
    header = read_header(reader)
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise AccountError("Fichier CSV illisible à la ligne %(line)s.", line=line) from exc
        start, line = line, reader.line_num + 1
        if not row or row == [""]:
            continue
        result = check_row(start, header, row)
        if isinstance(result, Candidate):
            first = seen.setdefault(result.key, start)
            if first != start:
                reason = N_("Adresse en double (déjà à la ligne %(first)s).")
                result = Refusal(start, result.email, reason, {"first": first})
        yield result


def check_row(line: int, header: list[str], row: list[str]) -> Candidate | Refusal:
    """One data row checked on its own."""
    raw_email = row[header.index("email")].strip() if len(row) > header.index("email") else ""
    if sum(len(value) for value in row) > MAX_LINE_CHARS:
        reason = N_("Ligne trop longue (plus de %(max)s caractères).")
        return Refusal(line, raw_email[:320], reason, {"max": MAX_LINE_CHARS})
    if len(row) != len(header):
        reason = N_("%(expected)s champs attendus, %(found)s trouvés.")
        return Refusal(line, raw_email[:320], reason, {"expected": len(header), "found": len(row)})
    values = {name: value.strip() for name, value in zip(header, row, strict=True)}
    try:
        email = normalize_email(values["email"])
        username = values.get("username", "")
        name = clean_name(values["name"] or username or email.split("@", 1)[0])
        return Candidate(
            line=line,
            email=email,
            name=name,
            password_hash=_password_hash(values["password_hash"]),
            username=username[:200],
            locale=_locale(values.get("locale", "")),
            verified=_verified(values.get("verified", "")),
            created_at=_created_at(values.get("created_at", "")),
            organizations=_organizations(values.get("organizations", "")),
        )
    except AccountError as exc:
        return Refusal(line, raw_email, exc.message, exc.params)


def _password_hash(value: str) -> str:
    if value and (len(value) > 255 or legacy_scheme(value) is None):
        raise AccountError("Format de mot de passe haché inconnu ou tronqué.")
    return value


def _locale(value: str) -> str:
    lowered = value.lower().replace("_", "-")
    if not lowered or lowered.startswith("fr"):
        return "fr-CA"
    if lowered.startswith("en"):
        return "en"
    raise AccountError("Langue inconnue : %(value)s (fr ou en).", value=value[:20])


def _verified(value: str) -> bool:
    lowered = value.lower()
    if not lowered or lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise AccountError("Valeur de « verified » invalide : %(value)s (true ou false).", value=value[:20])


def _created_at(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AccountError("Date « created_at » invalide : %(value)s (RFC 3339 attendu).", value=value[:40])
    return moment.astimezone(dt.UTC)


def _organizations(value: str) -> tuple[str, ...]:
    slugs = tuple(dict.fromkeys(part.strip().lower() for part in value.split(";") if part.strip()))
    for slug in slugs:
        if not SLUG_RE.match(slug):
            raise AccountError("Organisation invalide : %(slug)s.", slug=slug[:80])
    return slugs


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
    for candidate, member in created:
        audit(
            db, "member.imported", member_id=member.id, subject_type="member", subject_id=str(member.id), reason=source
        )
        for slug in candidate.organizations:
            if slug in organizations:
                db.add(Membership(organization_id=organizations[slug] or 0, member_id=member.id or 0))
        if not candidate.password_hash:
            report.to_invite.append(member.id or 0)


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


def import_file(
    database: Database,
    path: Path,
    *,
    dry_run: bool = False,
    update_names: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """``portail users import``: check the file, then bring its rows in. Raises ``AccountError`` for a
    file that cannot be read at all (nothing is written then)."""
    total = max(check_file(path) - 1, 0)
    report = Report(dry_run=dry_run)
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return apply_all(
            database,
            read_rows(stream),
            report,
            update_names=update_names,
            progress=(lambda done: progress(done, total)) if progress else None,
        )


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
