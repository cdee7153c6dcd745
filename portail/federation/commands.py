"""``portail instances …`` and ``portail hosters …``: the registry from the command line.

The CLI acts as a federation administrator (its audit entries have no member as actor). Messages
are French first, then English; errors print one line and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from portail import db as database
from portail.config import Settings
from portail.federation import hosters, instances_file, nodes, overview, probes
from portail.federation.rules import Actor, FederationError
from portail.web import translate


def _open(settings: Settings) -> database.Database:
    handle = database.Database(settings)
    database.check_connection(handle.engine)
    database.upgrade(handle.engine)
    return handle


def _fail(message: str) -> int:
    import sys

    print(message, file=sys.stderr)
    return 1


def _error(exc: FederationError) -> int:
    french = exc.message % exc.params if exc.params else exc.message
    english = translate("en", exc.message, **exc.params)
    return _fail(f"{french} / {english}" if english != french else french)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.instances_file
    data = instances_file.load(path)
    handle = _open(settings)
    try:
        report = handle.call(instances_file.sync, settings, data, prune=args.prune)
    except FederationError as exc:
        return _error(exc)
    finally:
        handle.dispose()
    instances_file.print_report(report, path)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    handle = _open(settings)
    try:
        with handle.session() as session:
            rows = [overview.public_view(session, i) for i in nodes.list_instances(session, status=args.status or None)]
    except FederationError as exc:
        return _error(exc)
    finally:
        handle.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        print(
            f"{row['slug']}\t{row['status']}\t{row['software']}\t{row['base_url']}\t{row['hoster'] or '-'}\t"
            f"{row['availability']}"  # demo | new | up | down (availability.py), as the pages say it
        )
    return 0


def _instance_decision(action: str) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        handle = _open(settings)
        try:
            with handle.session() as session:
                instance = nodes.decide(session, settings, Actor.cli(), args.slug, action, args.reason or "")
                status = instance.status
        except FederationError as exc:
            return _error(exc)
        finally:
            handle.dispose()
        print(f"Instance {args.slug} : {status} / instance {args.slug}: {status}")
        if action == "approve":
            print(
                "Le secret du client s’obtient une fois sur la page du nœud (hébergeur). / The hoster gets the "
                "client secret once on the node's page."
            )
        return 0

    return handler


def cmd_probe(args: argparse.Namespace, settings: Settings) -> int:
    handle = _open(settings)
    try:
        results = asyncio.run(probes.run_round(settings, handle, set(args.slugs) or None))
    finally:
        handle.dispose()
    for target, result in results:
        state = "up" if result.up else "down"
        print(
            f"{target.slug}\t{state}\t{result.latency_ms if result.latency_ms is not None else '-'} ms\t"
            f"{result.version or '-'}\t{result.error}"
        )
    return 0


def cmd_hosters_list(args: argparse.Namespace, settings: Settings) -> int:
    handle = _open(settings)
    try:
        with handle.session() as session:
            rows = [
                {
                    "slug": h.slug,
                    "name": h.name,
                    "status": h.status,
                    "contact_email": h.contact_email,
                    "charter_version": h.charter_version,
                }
                for h in hosters.list_hosters(session, args.status or None)
            ]
    finally:
        handle.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['slug']}\t{row['status']}\t{row['name']}\t{row['contact_email']}")
    return 0


def _hoster_decision(approve: bool) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        handle = _open(settings)
        try:
            with handle.session() as session:
                hoster = hosters.decide(
                    session, settings, Actor.cli(), args.slug, approve=approve, reason=args.reason or ""
                )
                status = hoster.status
        except FederationError as exc:
            return _error(exc)
        finally:
            handle.dispose()
        print(f"Hébergeur {args.slug} : {status} / hoster {args.slug}: {status}")
        return 0

    return handler


def register(subparsers: Any) -> None:
    instances = subparsers.add_parser("instances", help="Instances de la fédération / federation instances")
    sub = instances.add_subparsers(dest="instances_command", required=True)
    sync = sub.add_parser("sync", help="Synchroniser instances.toml / sync instances.toml")
    sync.add_argument("file", nargs="?", help="Fichier (défaut : instances_file) / file (default: instances_file)")
    sync.add_argument("--prune", action="store_true", help="Retirer les instances absentes / retire missing ones")
    sync.set_defaults(handler=cmd_sync)
    listing = sub.add_parser("list", help="Lister les instances / list instances")
    listing.add_argument("--status", default="")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    for action, text in (
        ("approve", "Approuver / approve"),
        ("suspend", "Suspendre / suspend"),
        ("retire", "Retirer / retire"),
        ("reactivate", "Réactiver / reactivate"),
    ):
        parser = sub.add_parser(action, help=f"{text} (instance)")
        parser.add_argument("slug")
        parser.add_argument("--reason", default="", required=action in ("suspend", "retire"))
        parser.set_defaults(handler=_instance_decision(action))
    probe = sub.add_parser("probe", help="Sonder maintenant / probe now")
    probe.add_argument("slugs", nargs="*")
    probe.set_defaults(handler=cmd_probe)

    hoster_parser = subparsers.add_parser("hosters", help="Hébergeurs / hosters")
    hsub = hoster_parser.add_subparsers(dest="hosters_command", required=True)
    hlist = hsub.add_parser("list", help="Lister les hébergeurs / list hosters")
    hlist.add_argument("--status", default="")
    hlist.add_argument("--json", action="store_true")
    hlist.set_defaults(handler=cmd_hosters_list)
    approve = hsub.add_parser("approve", help="Accepter / approve")
    approve.add_argument("slug")
    approve.add_argument("--reason", default="")
    approve.set_defaults(handler=_hoster_decision(True))
    refuse = hsub.add_parser("refuse", help="Refuser (raison envoyée) / refuse (reason mailed)")
    refuse.add_argument("slug")
    refuse.add_argument("--reason", required=True)
    refuse.set_defaults(handler=_hoster_decision(False))
