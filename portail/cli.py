"""The ``portail`` command: serve, database, members — and the commands each package adds.

Messages are French first, then English. Errors print one line to stderr and exit non-zero.
Packages contribute subcommands through a ``commands.py`` module exposing ``register(subparsers)``;
each handler receives the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from portail import db as database
from portail import mail
from portail.accounts import flows, imports, members, newcomers
from portail.accounts.members import AccountError
from portail.accounts.mfa import commands as mfa_commands
from portail.accounts.passwords import Passwords, password_problem
from portail.config import ConfigError, Settings, load_settings
from portail.oidc.commands import command_setup, open_database
from portail.web import translate

Handler = Callable[[argparse.Namespace, Settings], int]


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def bilingual(message: str, **params: object) -> str:
    """A French source message followed by its English translation, on one line."""
    return f"{translate('fr-CA', message, **params)} / {translate('en', message, **params)}"


def open_db(settings: Settings) -> database.Database:
    return open_database(settings)


# ---------------------------------------------------------------- serve and db


# Idle keep-alive connections stay open longer than any client or proxy keeps them (undici/node
# fetch 4 s, httpx 5 s, nginx and cloud load balancers 60 s), so that the client always closes
# first. With uvicorn's default (5 s), a client whose event loop was late on a busy machine reused
# a connection the server had just closed and got "other side closed" (reproduced: a node fetch
# idle 3.5 s then starved 2.5 s). An idle connection costs a socket and a few kilobytes.
KEEP_ALIVE_SECONDS = 75


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``portail serve`` passes to ``uvicorn.run``."""
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "http": "httptools",
        "loop": "uvloop",
        "proxy_headers": False,  # handled by portail.request_log with the forwarded_allow_ips setting
        "log_level": args.log_level,
        "access_log": args.access_log,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    # Each worker must answer uvicorn's readiness check; importing and building the app can take
    # longer than uvicorn's 5-second default on a busy small machine, and the worker is then killed
    # and respawned forever.
    if "timeout_worker_healthcheck" in _uvicorn_options():
        options["timeout_worker_healthcheck"] = 60
    return options


def issuer_for_listener(settings: Settings, host: str, port: int) -> str | None:
    """The issuer ``serve`` should use when none was configured and the default does not match the port.

    ``make run PORT=8080`` would otherwise announce and sign for ``http://127.0.0.1:8000``: every
    redirect, discovery document and cookie would point at a port nobody listens on.
    """
    default = Settings.__dataclass_fields__["issuer"].default
    if settings.issuer != default:
        return None  # set in portail.toml or PORTAIL_ISSUER: the operator's choice stands
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound
    if ":" in public_host:
        public_host = f"[{public_host}]"
    issuer = f"http://{public_host}:{port}"
    return None if issuer == default else issuer


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from portail import metrics

    issuer = issuer_for_listener(settings, args.host, args.port)
    if issuer is not None:  # the workers read it from their environment
        os.environ["PORTAIL_ISSUER"] = issuer
        settings = settings.replace(issuer=issuer)
        print(
            f"Émetteur (issuer) non configuré : {issuer} d’après le port d’écoute (PORTAIL_ISSUER pour le fixer)"
            f" / issuer not configured: {issuer} from the listening port (set PORTAIL_ISSUER to fix it)",
            flush=True,
        )
    if args.forwarded_allow_ips is not None:  # the workers read it from their settings
        os.environ["PORTAIL_FORWARDED_ALLOW_IPS"] = args.forwarded_allow_ips
    metrics.prepare_multiprocess(settings.var_path)  # before the workers start: they inherit it
    db = open_db(settings)
    ensure_admin(settings, db)
    load_instances(settings, db)
    db.dispose()
    print(f"Portail : {settings.issuer} — écoute sur / listening on http://{args.host}:{args.port}", flush=True)
    if not settings.smtp_url:
        mail.announce_outbox(sys.stdout)
        print(f"Courriels dans / mail goes to {settings.outbox_path}", flush=True)
    uvicorn.run("portail.app:create_app_from_env", **uvicorn_options(args))
    return 0


def _uvicorn_options() -> set[str]:
    import inspect

    import uvicorn

    return set(inspect.signature(uvicorn.Config).parameters)


def ensure_admin(settings: Settings, db: database.Database) -> None:
    """On first run, create an administrator and print its password once (stored hashed)."""
    if not settings.create_admin_on_first_run:
        return
    with db.session() as session:
        if members.any_admin(session):
            return
        password = secrets.token_urlsafe(12)
        host = settings.issuer.split("://", 1)[1].split(":")[0].split("/")[0]
        email = f"admin@{host if '.' in host and not host.replace('.', '').isdigit() else 'portail.localhost'}"
        members.create_member(
            session,
            email=email,
            name="Administrateur Portail",
            password_hash=Passwords(settings).hash(password),
            verified=True,
            is_admin=True,
        )
    print("", flush=True)
    print("  Administrateur créé / administrator created", flush=True)
    print(f"    courriel / email     : {email}", flush=True)
    print(f"    mot de passe / password : {password}", flush=True)
    print("  Notez-le : il ne sera plus affiché. / Write it down: it will not be shown again.", flush=True)
    if settings.mfa_required_for_admins:
        print(
            f"  Ajoutez ensuite une validation en deux étapes : {settings.issuer}/account/security\n"
            "  Then add two-step verification (required before the administration pages).",
            flush=True,
        )
    print("", flush=True)


def load_instances(settings: Settings, db: database.Database) -> None:
    """Sync ``instances.toml`` when the federation package provides it (see ``portail instances sync``)."""
    import importlib

    try:
        instances_file = importlib.import_module("portail.federation.instances_file")
    except ModuleNotFoundError:
        return
    sync = getattr(instances_file, "sync_on_start", None)
    if sync is None:
        return
    if not os.path.exists(settings.instances_file):
        print(
            bilingual(
                "Aucun fichier d’instances (%(path)s) : le registre démarre vide",
                path=settings.instances_file,
            ),
            flush=True,
        )
        return
    sync(settings, db)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    open_db(settings).dispose()
    print("Base de données à jour / database up to date")
    return 0


# ---------------------------------------------------------------- users


def cmd_users_create(args: argparse.Namespace, settings: Settings) -> int:
    if not args.password_stdin:
        return fail("Mot de passe requis sur l’entrée standard (--password-stdin) / password required on stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password, settings)
    if problem:
        return fail(bilingual(problem, min=settings.password_min_length, max=settings.password_max_length))
    db = open_db(settings)
    try:
        with db.session() as session:
            member = members.create_member(
                session,
                email=args.email,
                name=args.name,
                password_hash=Passwords(settings).hash(password),
                verified=True,
                is_admin=args.admin,
                locale=args.locale,
            )
            summary = {
                "id": member.public_id,
                "email": member.email,
                "name": member.name,
                "admin": member.is_admin,
            }
    except AccountError as exc:
        return fail(f"{bilingual(exc.message, **exc.params)} ({args.email})")
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"Membre créé / member created: {summary['email']}")
    return 0


DEFAULT_LIST_LIMIT = 1000


def _listing_json(row: members.MemberListing) -> dict[str, Any]:
    return {
        "email": row.email,
        "name": row.name,
        "admin": row.admin,
        "verified": row.verified,
        "disabled": row.disabled,
        "created_at": row.created_at.isoformat(timespec="seconds"),
    }


def _listing_line(row: members.MemberListing) -> str:
    flags = ",".join(f for f in ("admin", "verified", "disabled") if getattr(row, f)) or "-"
    return f"{row.email}\t{row.name}\t{flags}\t{row.created_at.isoformat(timespec='seconds')}"


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    """``portail users list``: members by id, streamed in keyset batches (one line, or one item of
    a JSON array, written as each row arrives). Without ``--limit``, stops at 1,000 and says so on
    stderr when more members exist."""
    limit = DEFAULT_LIST_LIMIT if args.limit is None else args.limit
    if limit < 0 or args.offset < 0:
        return fail("--limit et --offset sont positifs / --limit and --offset must not be negative", 2)
    out = sys.stdout
    db = open_db(settings)
    count, last_id, cut = 0, 0, False
    try:
        with db.session() as session:
            if args.json:
                out.write("[")
            for row in members.iter_listing(session, offset=args.offset, limit=limit, batch=args.batch):
                if args.json:
                    out.write((", " if count else "") + json.dumps(_listing_json(row)))
                else:
                    out.write(_listing_line(row) + "\n")
                count, last_id = count + 1, row.id
            if args.json:
                out.write("]\n")
            out.flush()
            cut = args.limit is None and count == limit and members.any_member_after(session, last_id)
    except BrokenPipeError:  # ``portail users list | head``: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        db.dispose()
    if cut:
        shown = f"{limit:,}"
        print(
            f"Liste limitée à {shown.replace(',', ' ')} membres ; --limit N pour plus. / "
            f"List limited to {shown} members; use --limit N for more.",
            file=sys.stderr,
        )
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    db = open_db(settings)
    try:
        with db.session() as session:
            member = members.get_by_email(session, args.email)
            if member is None:
                return fail(f"Membre introuvable / no such member: {args.email}")
            flows.disable_member(session, member, reason=args.reason or "")
    finally:
        db.dispose()
    print(f"Membre désactivé, sessions fermées / member disabled, sessions ended: {args.email}")
    return 0


def cmd_users_import(args: argparse.Namespace, settings: Settings) -> int:
    """``portail users import FILE``: exit 0 when every line went through, 3 when some were refused."""
    path = Path(args.file)
    if not path.is_file():
        return fail(f"Fichier introuvable / no such file: {args.file}")
    shown = [0]

    def progress(done: int, total: int) -> None:
        if total >= PROGRESS_EVERY and (done - shown[0] >= PROGRESS_EVERY or done >= total):
            shown[0] = done
            print(f"… {done}/{total} lignes / lines", file=sys.stderr, flush=True)

    db = open_db(settings)
    try:
        report = imports.import_file(db, path, dry_run=args.dry_run, update_names=args.update_names, progress=progress)
        if args.send_invitations and not args.dry_run:
            report.invited = newcomers.send_invitations(
                db, settings, report.to_invite, per_minute=args.invitations_per_minute
            )
    except AccountError as exc:
        return fail(bilingual(exc.message, **exc.params))
    except OSError as exc:
        return fail(f"Fichier illisible / unreadable file: {args.file} ({exc.strerror})")
    finally:
        db.dispose()
    print(json.dumps(newcomers.report_json(report)) if args.json else newcomers.report_text(report))
    return 3 if report.refused else 0


PROGRESS_EVERY = 5000


def positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("≥ 1")
    return value


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portail", description="Portail En commun")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Démarrer le serveur / start the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="Mandataires inverses de confiance / trusted reverse proxies (setting forwarded_allow_ips)",
    )
    serve.set_defaults(handler=cmd_serve)

    db_parser = sub.add_parser("db", help="Base de données / database").add_subparsers(dest="db_command", required=True)
    db_parser.add_parser("upgrade", help="Appliquer les migrations / apply migrations").set_defaults(
        handler=cmd_db_upgrade
    )

    users = sub.add_parser("users", help="Membres / members").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="Créer un membre vérifié / create a verified member")
    create.add_argument("email")
    create.add_argument("--name", required=True)
    create.add_argument("--password-stdin", action="store_true")
    create.add_argument("--admin", action="store_true")
    create.add_argument("--locale", default="fr-CA", choices=["fr-CA", "en"])
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_users_create)
    listing = users.add_parser("list", help="Lister les membres / list members")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument(
        "--limit", type=int, default=None, help="au plus N membres (1000 par défaut) / at most N members (default 1000)"
    )
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)  # rows per statement (tests)
    listing.set_defaults(handler=cmd_users_list)
    disable = users.add_parser("disable", help="Désactiver un membre / disable a member")
    disable.add_argument("email")
    disable.add_argument("--reason", default="")
    disable.set_defaults(handler=cmd_users_disable)
    importing = users.add_parser(
        "import", help="Importer des membres d’un fichier CSV / import members from a CSV file (docs/import-format.md)"
    )
    importing.add_argument("file")
    importing.add_argument("--dry-run", action="store_true", help="Ne rien changer / change nothing")
    importing.add_argument(
        "--send-invitations",
        action="store_true",
        help="Inviter les membres sans mot de passe à en choisir un / invite members without a password",
    )
    importing.add_argument("--invitations-per-minute", type=positive_int, default=60)
    importing.add_argument(
        "--update-names", action="store_true", help="Mettre à jour le nom des membres existants / update names"
    )
    importing.add_argument("--json", action="store_true")
    importing.set_defaults(handler=cmd_users_import)
    mfa_commands.register(users)

    for register in _package_commands():
        register(sub)
    return parser


def _package_commands() -> list[Callable[[Any], None]]:
    import importlib

    found = []
    for package in ("oidc", "federation", "notifications", "dashboard", "consent", "keycloak"):
        try:
            module = importlib.import_module(f"portail.{package}.commands")
        except ModuleNotFoundError as exc:
            if exc.name != f"portail.{package}.commands":
                raise
            continue
        found.append(module.register)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        handler: Handler = args.handler
        if args.command == "serve":
            return handler(args, settings)
        # The domain hooks ``create_app`` installs, for commands that change state outside the server:
        # the command's databases (``open_database``) end grants with their sessions and queue their
        # back-channel logouts; withdrawals tell members when a tool they use goes away (e.g.
        # ``portail instances suspend``).
        from portail.notifications import withdrawals

        with command_setup(withdrawals.install):
            return handler(args, settings)
    except ConfigError as exc:
        return fail(str(exc), 2)
    except OSError as exc:  # a folder or file of the settings that cannot be created or read
        return fail(f"Erreur système / system error: {exc}", 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
