"""``portail keycloak …``: import a realm's users, and link Portail as a realm's upstream identity.

Secrets are never arguments: ``--client-secret-env`` / ``--admin-secret-env`` / ``--instance-secret-env``
name environment variables. Messages are French, then English; errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from portail import db as database
from portail.accounts import newcomers
from portail.config import Settings
from portail.keycloak import realm_import, realm_link
from portail.keycloak.errors import BridgeError
from portail.oidc.commands import open_database
from portail.web import translate


def _bilingual(message: str, params: dict[str, Any]) -> str:
    return f"{translate('fr-CA', message, **params)} / {translate('en', message, **params)}"


def _secret(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise BridgeError("Variable d’environnement vide ou absente : %(name)s.", name=name)
    return value


def _open(settings: Settings) -> database.Database:
    return open_database(settings)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        admin = realm_import.admin_client(
            args.server_url, args.realm, args.client_id, _secret(args.client_secret_env), args.timeout
        )
        db = _open(settings)
        try:
            report = realm_import.import_realm(db, admin, args.server_url, args.realm, dry_run=args.dry_run)
        finally:
            db.dispose()
    except BridgeError as exc:
        print(_bilingual(exc.message, exc.params), file=sys.stderr)
        return 1
    print(json.dumps(newcomers.report_json(report)) if args.json else newcomers.report_text(report))
    return 3 if report.refused else 0


def cmd_link_realm(args: argparse.Namespace, settings: Settings) -> int:
    try:
        admin = realm_import.admin_client(
            args.server_url, args.realm, args.admin_client_id, _secret(args.admin_secret_env), args.timeout
        )
        provider = None
        if not args.unlink:
            db = _open(settings)
            try:
                secret = _secret(args.instance_secret_env or db.call(realm_link.secret_env_of, args.instance))
                client = db.call(realm_link.instance_client, args.instance, secret, args.server_url, args.realm)
            finally:
                db.dispose()
            provider = realm_link.identity_provider(settings, client)
        changes = realm_link.run(admin, provider, args.server_url, args.realm, dry_run=args.dry_run)
    except BridgeError as exc:
        print(_bilingual(exc.message, exc.params), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "changes": changes}))
        return 0
    for change in changes:
        print(("(essai / dry run) " if args.dry_run else "") + change)
    if not changes:
        print("Rien à changer / nothing to change")
    return 0


def register(sub: Any) -> None:
    keycloak = sub.add_parser("keycloak", help="Pont vers Keycloak / bridge to Keycloak").add_subparsers(
        dest="keycloak_command", required=True
    )
    importing = keycloak.add_parser("import", help="Importer les comptes d’un royaume / import a realm's users")
    importing.add_argument("--server-url", required=True)
    importing.add_argument("--realm", required=True)
    importing.add_argument("--client-id", required=True, help="Client confidentiel (compte de service) / client")
    importing.add_argument("--client-secret-env", required=True, help="Variable contenant son secret / env var")
    importing.add_argument("--dry-run", action="store_true")
    importing.add_argument("--json", action="store_true")
    importing.add_argument("--timeout", type=int, default=10)
    importing.set_defaults(handler=cmd_import)
    linking = keycloak.add_parser(
        "link-realm", help="Faire de Portail le fournisseur d’identité d’un royaume / link Portail to a realm"
    )
    linking.add_argument("--server-url", required=True)
    linking.add_argument("--realm", required=True)
    linking.add_argument("--admin-client-id", required=True)
    linking.add_argument("--admin-secret-env", required=True)
    linking.add_argument("--instance", required=True, help="Slug de l’instance (instances.toml) / instance slug")
    linking.add_argument("--instance-secret-env", default="")
    linking.add_argument("--dry-run", action="store_true")
    linking.add_argument("--unlink", action="store_true")
    linking.add_argument("--json", action="store_true")
    linking.add_argument("--timeout", type=int, default=10)
    linking.set_defaults(handler=cmd_link_realm)
