"""Command-line tools of the consent package.

``portail privacy …`` (policy versions, account-events endpoints, one pass of the jobs) and additions
to ``portail users …`` (export, deletion, roles). Messages are French, then English.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from portail import db as database
from portail.accounts import members
from portail.accounts.models import Member
from portail.config import Settings
from portail.consent import deletion, events, export, jobs, policy, purge
from portail.consent.errors import ConsentError
from portail.oidc import keys
from portail.oidc.clients import get_client
from portail.oidc.commands import open_database

ROLES = ("privacy-officer",)


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def _open(settings: Settings) -> database.Database:
    db = open_database(settings)
    keys.install(db, settings)  # account events are signed with the provider's keys (generated if none yet)
    return db


def _member(session: Session, email: str) -> Member:
    member = members.get_by_email(session, email)
    if member is None:
        raise ConsentError("Membre introuvable : %(email)s", email=email)
    return member


def _run(settings: Settings, fn: Any, *args: Any) -> Any:
    db = _open(settings)
    try:
        return db.call(fn, *args)
    finally:
        db.dispose()


# ---------------------------------------------------------------- portail privacy


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    def publish(session: Session) -> str:
        row = policy.publish(
            session,
            version=args.version,
            material=args.material,
            summary_fr=args.summary_fr,
            summary_en=args.summary_en,
        )
        return row.version

    try:
        version = _run(settings, publish)
    except ConsentError as exc:
        return _fail(exc.bilingual())
    kind = "importante / material" if args.material else "mineure / minor"
    print(f"Version {version} publiée ({kind}) / version {version} published")
    return 0


def cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
    rows = _run(settings, policy.history)
    data = [
        {
            "version": r.version,
            "published_at": r.published_at.isoformat(timespec="seconds"),
            "material": r.material,
            "summary_fr": r.summary_fr,
            "summary_en": r.summary_en,
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for row in data:
            flag = "material" if row["material"] else "minor"
            print(f"{row['version']}\t{row['published_at']}\t{flag}\t{row['summary_fr']}")
    return 0


def cmd_events_uri(args: argparse.Namespace, settings: Settings) -> int:
    if args.uri and not events.uri_allowed(args.uri, settings.replace(allow_http_instances=True)):
        return _fail(f"URI invalide / invalid URI: {args.uri}")

    def set_uri(session: Session) -> bool:
        client = get_client(session, args.client_id)
        if client is None:
            return False
        metadata = dict(client.extra_metadata)
        if args.uri:
            metadata[purge.METADATA_KEY] = args.uri
        else:
            metadata.pop(purge.METADATA_KEY, None)
        client.extra_metadata = metadata
        session.add(client)
        return True

    if not _run(settings, set_uri):
        return _fail(f"Client introuvable / no such client: {args.client_id}")
    print(f"Point de réception des événements enregistré / account-events endpoint set: {args.client_id}")
    return 0


def cmd_run_jobs(args: argparse.Namespace, settings: Settings) -> int:
    db = _open(settings)
    try:
        done = asyncio.run(jobs.run_once(db, settings))
    finally:
        db.dispose()
    print(
        json.dumps(
            {
                "exports_built": done.exports_built,
                "archives_expired": done.archives_expired,
                "purged": done.purged,
                "deliveries": done.deliveries,
            }
        )
    )
    return 0


# ---------------------------------------------------------------- portail users


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        document = _run(settings, lambda s: export.export_now(s, settings, _member(s, args.email).id or 0))
    except ConsentError as exc:
        return _fail(exc.bilingual())
    if args.output in (None, "-"):
        sys.stdout.write(document + "\n")
    else:
        path = Path(args.output)
        path.write_text(document + "\n", encoding="utf-8")
        path.chmod(0o600)
        print(f"Export écrit dans / export written to {path}", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    def ask(session: Session) -> tuple[int, str]:
        row = deletion.request_deletion(session, settings, _member(session, args.email).id or 0, immediate=args.now)
        return row.id or 0, row.due_at.date().isoformat()

    try:
        request_id, due = _run(settings, ask)
    except ConsentError as exc:
        return _fail(exc.bilingual())
    if not args.now:
        print(f"Suppression prévue le {due} / deletion scheduled on {due}")
        return 0
    report = _run(settings, purge.purge, settings, request_id)
    db = _open(settings)
    try:
        asyncio.run(purge.log_out_devices(settings, [report] if report else []))
        sent = asyncio.run(events.deliver_due(db, settings))
    finally:
        db.dispose()
    told = report.tools_notified if report else 0
    print(f"Compte supprimé, {told} outil(s) avisé(s) / account purged, {told} tool(s) told: {sent}")
    return 0


def _set_role(args: argparse.Namespace, settings: Settings, *, grant: bool) -> int:
    def change(session: Session) -> None:
        member = _member(session, args.email)
        roles = [r for r in member.roles.split() if r != args.role]
        if grant:
            roles.append(args.role)
        member.roles = " ".join(roles)
        session.add(member)
        members.audit(
            session,
            "member.role_granted" if grant else "member.role_revoked",
            member_id=member.id,
            subject_type="member",
            subject_id=str(member.id),
            reason=args.role,
        )

    try:
        _run(settings, change)
    except ConsentError as exc:
        return _fail(exc.bilingual())
    verb = "accordé / granted" if grant else "retiré / revoked"
    print(f"Rôle {args.role} {verb}: {args.email}")
    return 0


def cmd_grant_role(args: argparse.Namespace, settings: Settings) -> int:
    return _set_role(args, settings, grant=True)


def cmd_revoke_role(args: argparse.Namespace, settings: Settings) -> int:
    return _set_role(args, settings, grant=False)


# ---------------------------------------------------------------- registration


def _users_group(subparsers: Any) -> Any:
    """The ``users`` sub-command group defined by ``cli.py`` (created if absent)."""
    parser = subparsers.choices.get("users") or subparsers.add_parser("users", help="Membres / members")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="users_command", required=True)


def register(subparsers: Any) -> None:
    privacy = subparsers.add_parser("privacy", help="Renseignements personnels / personal data").add_subparsers(
        dest="privacy_command", required=True
    )
    publish = privacy.add_parser("publish", help="Publier une version de la politique / publish a policy version")
    publish.add_argument("version")
    kind = publish.add_mutually_exclusive_group(required=True)
    kind.add_argument("--material", dest="material", action="store_true")
    kind.add_argument("--minor", dest="material", action="store_false")
    publish.add_argument("--summary-fr", required=True)
    publish.add_argument("--summary-en", required=True)
    publish.set_defaults(handler=cmd_publish)
    versions = privacy.add_parser("versions", help="Versions publiées / published versions")
    versions.add_argument("--json", action="store_true")
    versions.set_defaults(handler=cmd_versions)
    uri = privacy.add_parser(
        "events-uri", help="Point de réception des événements d’un client / a client's account-events endpoint"
    )
    uri.add_argument("client_id")
    uri.add_argument("uri", nargs="?", default="", help="vide pour retirer / empty to remove")
    uri.set_defaults(handler=cmd_events_uri)
    privacy.add_parser("run-jobs", help="Exécuter les tâches une fois / run the jobs once").set_defaults(
        handler=cmd_run_jobs
    )

    users = _users_group(subparsers)
    exporting = users.add_parser("export", help="Exporter les données d’un membre / export a member's data")
    exporting.add_argument("email")
    exporting.add_argument("--output", "-o", default=None, help="fichier (défaut : sortie standard) / file")
    exporting.set_defaults(handler=cmd_export)
    delete = users.add_parser("delete", help="Supprimer un compte / delete an account")
    delete.add_argument("email")
    delete.add_argument("--now", action="store_true", help="sans délai de grâce / without the grace period")
    delete.set_defaults(handler=cmd_delete)
    for name, handler, text in (
        ("grant-role", cmd_grant_role, "Accorder un rôle / grant a role"),
        ("revoke-role", cmd_revoke_role, "Retirer un rôle / revoke a role"),
    ):
        role = users.add_parser(name, help=text)
        role.add_argument("email")
        role.add_argument("role", choices=ROLES)
        role.set_defaults(handler=handler)
