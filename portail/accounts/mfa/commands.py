"""``portail users mfa list EMAIL [--json]`` (a member's factors, never a secret) and
``portail users mfa reset EMAIL --reason TEXT`` (removes every factor and recovery code of a member
who lost theirs; recorded in the audit log, the member told by mail)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from portail import db as database
from portail.accounts import members
from portail.accounts.mfa import factors
from portail.config import Settings

KINDS = {"totp": "application d’authentification / authenticator app", "passkey": "clé d’accès / passkey"}
KINDS["recovery-codes"] = "codes de récupération / recovery codes"


def register(users: Any) -> None:
    """Add ``mfa list`` and ``mfa reset`` under ``portail users``."""
    mfa = users.add_parser("mfa", help="Validation en deux étapes / second factors").add_subparsers(
        dest="mfa_command", required=True
    )
    listing = mfa.add_parser("list", help="Méthodes d’un membre, sans secret / a member's factors, no secret")
    listing.add_argument("email")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    reset = mfa.add_parser("reset", help="Retirer toutes les méthodes d’un membre / remove all of a member's factors")
    reset.add_argument("email")
    reset.add_argument("--reason", required=True, help="Consigné au journal d’audit / recorded in the audit log")
    reset.set_defaults(handler=cmd_reset)


def _open(settings: Settings) -> database.Database:
    db = database.Database(settings)
    database.check_connection(db.engine)
    database.upgrade(db.engine)
    return db


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    db = _open(settings)
    try:
        with db.session() as session:
            member = members.get_by_email(session, args.email)
            if member is None:
                return _fail(f"Membre introuvable / no such member: {args.email}")
            found = factors.listing(session, member.id or 0)
    finally:
        db.dispose()
    rows = [
        {
            "type": f.kind,
            "name": f.name,
            "created_at": f.created_at.isoformat(timespec="seconds"),
            "last_used_at": f.last_used_at.isoformat(timespec="seconds") if f.last_used_at else None,
            **({"remaining": f.remaining} if f.remaining is not None else {}),
        }
        for f in found
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"Aucune méthode / no factor: {args.email}")
    for row in rows:
        columns = [KINDS[str(row["type"])], row["name"] or "-", row["created_at"], row["last_used_at"] or "-"]
        if "remaining" in row:
            columns.append(f"{row['remaining']}/10")
        print("\t".join(str(c) for c in columns))
    return 0


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    reason = " ".join(str(args.reason).split())
    if not reason:
        return _fail("Raison requise (--reason) / a reason is required (--reason)")
    db = _open(settings)
    try:
        with db.session() as session:
            member = members.get_by_email(session, args.email)
            if member is None:
                return _fail(f"Membre introuvable / no such member: {args.email}")
            count = factors.reset(session, settings, member, reason)
    finally:
        db.dispose()
    print(f"Méthodes retirées / factors removed: {count} ({args.email})")
    return 0
