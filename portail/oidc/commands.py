"""``portail clients …`` and ``portail keys …``: register and manage OIDC clients, rotate signing keys.

Messages are French first, then English. ``clients create --json`` prints
``{"client_id": …, "client_secret": …}`` (``null`` secret for a public client); the secret is shown
once and stored hashed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from portail import db as database
from portail.accounts.extensions import AccountExtensions
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import backchannel, clients, keys, registration_commands, subjects, tokens
from portail.oidc.models import OAuthClient


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


_SETUP: ContextVar[tuple[Callable[[database.Database], object], ...]] = ContextVar("portail_command_setup", default=())


@contextlib.contextmanager
def command_setup(*steps: Callable[[database.Database], object]) -> Iterator[None]:
    """While the block runs, ``open_database`` also applies ``steps`` to each database it opens: how
    ``portail.cli`` adds the hooks of packages this one cannot import (a context variable, scoped to
    the command: no module-level registry an application could see)."""
    token = _SETUP.set((*_SETUP.get(), *steps))
    try:
        yield
    finally:
        _SETUP.reset(token)


def open_database(settings: Settings) -> database.Database:
    """The database of a command run outside the server, migrated, with the hooks that matter outside
    it (``create_app`` installs the rest): grants end with their login sessions, tools are sent
    back-channel logouts for them (by the server's background runner), the account page's username,
    the stored signing keys (``keys.attach``: loaded when first used, never generated or rotated
    here), and the steps of ``command_setup``."""
    db = database.Database(settings)
    extensions = AccountExtensions().attach(db)
    extensions.on_session_end(tokens.on_session_end)
    extensions.set_username_source(subjects.username_for)
    backchannel.install(db, extensions, settings)  # a command that ends sessions queues their logouts
    keys.attach(db, settings)
    for step in _SETUP.get():
        step(db)
    database.check_connection(db.engine)
    database.upgrade(db.engine)
    return db


def describe(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "jwks_uri": client.jwks_uri,
        "grant_types": client.grant_types,
        "scope": client.scope,
        "subject_type": client.subject_type,
        "sector_identifier": client.sector_identifier,
        "resource_audiences": client.resource_audiences,
        "trusted": client.trusted,
        "registered_dynamically": client.registered_dynamically,
        "created_at": client.created_at.isoformat(timespec="seconds"),
        "secret_rotated_at": client.secret_rotated_at.isoformat(timespec="seconds")
        if client.secret_rotated_at
        else None,
        "disabled": not client.active,
    }


# ---------------------------------------------------------------- clients


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    spec = clients.ClientSpec(
        name=args.name,
        redirect_uris=args.redirect_uri or [],
        public=args.public,
        client_id=args.client_id,
        post_logout_redirect_uris=args.post_logout_redirect_uri or [],
        backchannel_logout_uri=args.backchannel_logout_uri,
        grant_types=args.grant_type or ["authorization_code", "refresh_token"],
        scope=args.scope or clients.ClientSpec.scope,
        subject_type=args.subject_type or settings.default_subject_type,
        trusted=args.trusted,
        resource_audiences=args.audience or [],
        jwks_uri=args.jwks_uri,
        token_endpoint_auth_method="private_key_jwt" if args.jwks_uri and not args.public else None,
    )
    db = open_database(settings)
    try:
        with db.session() as session:
            row, secret = clients.create_client(session, spec)
            result = {"client_id": row.client_id, "client_secret": secret}
    except clients.ClientError as exc:
        return _fail(f"Client refusé / client refused: {exc.message}")
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Client créé / client created: {result['client_id']}")
        if secret:
            print(f"Secret (affiché une seule fois / shown once): {secret}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    with db.session() as session:
        data = [describe(c) for c in clients.list_clients(session)]
    db.dispose()
    if args.json:
        print(json.dumps(data))
        return 0
    for row in data:
        kind = "public" if row["public"] else "confidential"
        flags = ",".join(f for f in ("trusted", "disabled") if row[f]) or "-"
        print(f"{row['client_id']}\t{row['name']}\t{kind}\t{row['subject_type']}\t{flags}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    with db.session() as session:
        row = clients.get_client(session, args.client_id)
        data = describe(row) if row is not None else None
    db.dispose()
    if data is None:
        return _fail(f"Client introuvable / no such client: {args.client_id}")
    print(json.dumps(data, indent=None if args.json else 2, ensure_ascii=False))
    return 0


def cmd_rotate_secret(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    try:
        with db.session() as session:
            row = clients.get_client(session, args.client_id)
            if row is None:
                return _fail(f"Client introuvable / no such client: {args.client_id}")
            secret = clients.rotate_secret(session, row)
    except clients.ClientError as exc:
        return _fail(f"Refusé / refused: {exc.message}")
    finally:
        db.dispose()
    if args.json:
        print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    else:
        print(f"Nouveau secret (affiché une seule fois / new secret, shown once): {secret}")
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    try:
        with db.session() as session:
            row = clients.get_client(session, args.client_id)
            if row is None:
                return _fail(f"Client introuvable / no such client: {args.client_id}")
            revoked = clients.delete_client(session, row, reason=args.reason or "deleted from the CLI")
    finally:
        db.dispose()
    print(f"Client supprimé, {revoked} autorisation(s) révoquée(s) / client deleted, {revoked} grant(s) revoked")
    return 0


# ---------------------------------------------------------------- keys


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    lead = dt.timedelta(0) if args.now else keys.default_lead(settings)
    db = open_database(settings)
    with db.session() as session:
        keys.ensure_keys(session, settings)
        new = [(k.alg, k.kid) for k in keys.rotate(session, settings, lead=lead)]
    db.dispose()
    for alg, kid in new:
        print(f"Nouvelle clé / new key {alg} {kid}")
    when = "maintenant / now" if args.now else f"dans / in {int(lead.total_seconds())} s"
    print(f"Elles signent {when}; les anciennes restent publiées jusqu’à l’expiration de leurs jetons.")
    print("They sign from then on; the old public keys stay published until their tokens have expired.")
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    now = utcnow()
    with db.session() as session:
        keys.ensure_keys(session, settings)
        data = [
            {
                "kid": k.kid,
                "alg": k.alg,
                "state": keys.key_state(k, now),
                "created_at": k.created_at.isoformat(timespec="seconds"),
                "unpublish_after": k.unpublish_after.isoformat(timespec="seconds") if k.unpublish_after else None,
            }
            for k in keys.list_keys(session)
        ]
    db.dispose()
    if args.json:
        print(json.dumps(data))
        return 0
    for row in data:
        print(f"{row['kid']}\t{row['alg']}\t{row['state']}\t{row['created_at']}\t{row['unpublish_after'] or '-'}")
    return 0


# ---------------------------------------------------------------- parser


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("clients", help="Clients OpenID Connect / OIDC clients")
    sub = group.add_subparsers(dest="clients_command", required=True)

    create = sub.add_parser("create", help="Enregistrer un client / register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", metavar="URI")
    create.add_argument("--public", action="store_true", help="client public (PKCE, sans secret / no secret)")
    create.add_argument("--client-id", help="identifiant choisi / chosen client id")
    create.add_argument("--post-logout-redirect-uri", action="append", metavar="URI")
    create.add_argument("--backchannel-logout-uri", metavar="URI")
    create.add_argument("--trusted", action="store_true", help="outil de confiance : sans page de consentement")
    create.add_argument(
        "--jwks-uri",
        metavar="URI",
        help="clés publiques de l’outil (il s’authentifie par private_key_jwt) / the tool's public keys",
    )
    create.add_argument("--subject-type", choices=["public", "pairwise"])
    create.add_argument("--grant-type", action="append", choices=list(clients.GRANT_TYPES))
    create.add_argument("--scope", help='ex. "openid profile email groups offline_access"')
    create.add_argument("--audience", action="append", metavar="AUD", help="audience supplémentaire des jetons")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_create)

    listing = sub.add_parser("list", help="Lister les clients / list clients")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="Afficher un client / show a client")
    show.add_argument("client_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    rotate = sub.add_parser("rotate-secret", help="Nouveau secret / new secret")
    rotate.add_argument("client_id")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=cmd_rotate_secret)

    delete = sub.add_parser("delete", help="Supprimer un client et révoquer ses jetons / delete, revoke tokens")
    delete.add_argument("client_id")
    delete.add_argument("--reason", default="")
    delete.set_defaults(handler=cmd_delete)

    registration_commands.add_parsers(sub)  # clients initial-token (RFC 7591)

    key_group = subparsers.add_parser("keys", help="Clés de signature / signing keys")
    key_sub = key_group.add_subparsers(dest="keys_command", required=True)
    key_rotate = key_sub.add_parser("rotate", help="Nouvelles clés de signature / new signing keys")
    key_rotate.add_argument("--now", action="store_true", help="signer tout de suite / sign at once")
    key_rotate.set_defaults(handler=cmd_keys_rotate)
    key_list = key_sub.add_parser("list", help="Lister les clés / list keys")
    key_list.add_argument("--json", action="store_true")
    key_list.set_defaults(handler=cmd_keys_list)
