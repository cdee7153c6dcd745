"""``portail clients initial-token``: create an initial access token for dynamic registration.

Added under ``portail clients`` by ``oidc/commands.py`` (``add_parsers``). The token is printed once
(``--json``: ``{"initial_access_token": …, "expires_at": …, "uses": …}``) and stored hashed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from portail import db as database
from portail.config import Settings
from portail.oidc import initial_tokens


def cmd_initial_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        expires_in = initial_tokens.parse_duration(args.expires) if args.expires else None
    except ValueError:
        print(f"Durée invalide / invalid duration: {args.expires} (ex. 7d, 12h, 90m)", file=sys.stderr)
        return 2
    if args.uses is not None and args.uses < 1:
        print("--uses doit être au moins 1 / --uses must be at least 1", file=sys.stderr)
        return 2
    db = database.Database(settings)
    database.check_connection(db.engine)
    database.upgrade(db.engine)
    try:
        with db.session() as session:
            token, row = initial_tokens.create(session, expires_in=expires_in, uses=args.uses, note=args.note)
            expires_at = row.expires_at.isoformat(timespec="seconds") if row.expires_at else None
    finally:
        db.dispose()
    if args.json:
        print(json.dumps({"initial_access_token": token, "expires_at": expires_at, "uses": args.uses}))
        return 0
    print("Jeton d’accès initial créé / initial access token created (affiché une seule fois / shown once):")
    print(f"  {token}")
    print(f"  expire / expires: {expires_at or 'jamais / never'} · utilisations / uses: {args.uses or '∞'}")
    print(f"  POST {settings.issuer}/register avec / with Authorization: Bearer <jeton / token>")
    return 0


def add_parsers(clients_sub: Any) -> None:
    """Add ``initial-token`` to the ``portail clients`` subcommands."""
    parser = clients_sub.add_parser(
        "initial-token",
        help="Créer un jeton d’inscription dynamique / create a dynamic-registration token (RFC 7591)",
    )
    parser.add_argument("--expires", default="7d", help="Durée / lifetime, ex. 7d, 12h, 90m ('' = never)")
    parser.add_argument("--uses", type=int, default=None, help="Nombre d’inscriptions / registrations allowed")
    parser.add_argument("--note", default="", help="Note (pour qui / for whom)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=cmd_initial_token)
