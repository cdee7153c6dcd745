"""The CSV file of ``portail users import`` (format in ``docs/import-format.md``).

The file is read twice: once to check that it is UTF-8 and count its lines (for the progress),
then row by row. A file that cannot be read at all (not UTF-8, semicolons, a missing, unknown or
repeated column, a field too large for CSV) stops before anything is written. Otherwise each row is
checked on its own (``read_rows``): a refused row is reported with its line number and reason, and
never stops the others; the rest goes in through ``newcomers.apply_all``. A password hash is kept
only when ``passwords.legacy_scheme`` knows its format; an empty one makes a member without a
password.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from portail.accounts.members import AccountError, clean_name, normalize_email
from portail.accounts.newcomers import SLUG_RE, Candidate, Refusal, Report, apply_all
from portail.accounts.passwords import legacy_scheme
from portail.db import Database
from portail.web import N_

REQUIRED_COLUMNS = ("email", "name", "password_hash")
OPTIONAL_COLUMNS = ("username", "locale", "verified", "created_at", "organizations")
MAX_LINE_CHARS = 8192
_TRUE = {"true", "1", "yes", "oui", "vrai", "t", "y"}
_FALSE = {"false", "0", "no", "non", "faux", "f", "n"}


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
