"""``portail instances …``, ``portail hosters …`` and ``portail organizations …``: the registry from
the command line.

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
from portail.federation import (
    governance,
    hosters,
    instances_file,
    nodes,
    organizations,
    overview,
    probes,
    proof,
    proof_recheck,
    residency,
)
from portail.federation.organizations import OrganizationForm
from portail.federation.rules import Actor, FederationError
from portail.oidc.commands import open_database
from portail.web import translate


def _open(settings: Settings) -> database.Database:
    return open_database(settings)


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


def cmd_pia(args: argparse.Namespace, settings: Settings) -> int:
    """Record that a node's privacy impact assessment (Law 25 EFVP) was done; it can then be approved."""
    handle = _open(settings)
    try:
        with handle.session() as session:
            instance = residency.record_pia(session, settings, Actor.cli(), args.slug, args.note or "")
            when = instance.pia_recorded_at.date().isoformat() if instance.pia_recorded_at else ""
    except FederationError as exc:
        return _error(exc)
    finally:
        handle.dispose()
    print(f"EFVP enregistrée pour {args.slug} ({when}) / privacy impact assessment recorded for {args.slug}")
    return 0


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


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Check a node's proof of control now (its first proof when it awaits one)."""
    handle = _open(settings)
    try:
        instance = asyncio.run(proof_recheck.check_now(handle, settings, Actor.cli(), args.slug, args.method))
    except FederationError as exc:
        return _error(exc)
    finally:
        handle.dispose()
    print(
        f"Preuve {instance.proof_method.upper()} valide pour {args.slug} (statut : {instance.status}) / "
        f"{instance.proof_method.upper()} proof holds for {args.slug} (status: {instance.status})"
    )
    return 0


def cmd_proof(args: argparse.Namespace, settings: Settings) -> int:
    """Every live node's proof of control: method, state, last check, since when lost."""
    handle = _open(settings)
    try:
        with handle.session() as session:
            rows = proof_recheck.listing(session)
    finally:
        handle.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        error = row["error"]["description"] if row["error"] else ""
        print(
            f"{row['slug']}\t{row['status']}\t{row['method']}\t{row['state']}\t{row['checked_at'] or '-'}\t"
            f"{row['lost_at'] or '-'}\t{error}"
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


def _hoster_governance(action: str) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        handle = _open(settings)
        try:
            with handle.session() as session:
                status = governance.govern(session, settings, Actor.cli(), args.slug, action, args.reason or "").status
        except FederationError as exc:
            return _error(exc)
        finally:
            handle.dispose()
        print(f"Hébergeur {args.slug} : {status} / hoster {args.slug}: {status}")
        return 0

    return handler


def _organization_form(args: argparse.Namespace) -> OrganizationForm:
    return OrganizationForm(
        name=args.name,
        kind=args.kind,
        region=args.region,
        locality=args.locality,
        website=args.website,
        contact_email=args.contact,
    )


def cmd_organizations_save(args: argparse.Namespace, settings: Settings) -> int:
    handle = _open(settings)
    try:
        with handle.session() as session:
            if args.organizations_command == "create":
                found = organizations.create(session, Actor.cli(), args.slug, _organization_form(args))
            else:
                found = organizations.edit(session, Actor.cli(), args.slug, _organization_form(args))
            row = organizations.view(found)
    except FederationError as exc:
        return _error(exc)
    finally:
        handle.dispose()
    if args.json:
        print(json.dumps(row, ensure_ascii=False))
    else:
        verb = ("créée", "created") if args.organizations_command == "create" else ("modifiée", "updated")
        print(f"Organisation {row['slug']} {verb[0]} / organization {row['slug']} {verb[1]}")
    return 0


def cmd_organizations_list(args: argparse.Namespace, settings: Settings) -> int:
    handle = _open(settings)
    try:
        with handle.session() as session:
            rows = [organizations.view(o) for o in organizations.list_all(session, args.kind or "")]
    finally:
        handle.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['slug']}\t{row['kind']}\t{row['region'] or '-'}\t{row['name']}\t{row['contact_email'] or '-'}")
    return 0


def _register_organizations(subparsers: Any) -> None:
    parser = subparsers.add_parser("organizations", help="Organisations et territoires / organizations and territories")
    sub = parser.add_subparsers(dest="organizations_command", required=True)
    for action, text in (("create", "Créer / create"), ("edit", "Modifier / edit")):
        command = sub.add_parser(action, help=text)
        command.add_argument("slug")
        command.add_argument("--name", required=action == "create", default=None)
        command.add_argument(
            "--kind", choices=organizations.KINDS, default="organization" if action == "create" else None
        )
        command.add_argument("--region", default=None, help="Code (05) ou nom (Estrie) / code or name")
        command.add_argument("--locality", default=None, help="MRC, quartier / MRC, neighbourhood")
        command.add_argument("--website", default=None)
        command.add_argument("--contact", default=None, help="Courriel de contact / contact email")
        command.add_argument("--json", action="store_true")
        command.set_defaults(handler=cmd_organizations_save)
    listing = sub.add_parser("list", help="Lister / list")
    listing.add_argument("--kind", choices=organizations.KINDS, default="")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_organizations_list)


def register(subparsers: Any) -> None:
    _register_organizations(subparsers)
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
    verify = sub.add_parser("verify", help="Vérifier la preuve de contrôle maintenant / check the proof now")
    verify.add_argument("slug")
    verify.add_argument(
        "--method", choices=proof.METHODS, default=None, help="http ou dns (défaut : celle du nœud) / default: its own"
    )
    verify.set_defaults(handler=cmd_verify)
    proofs = sub.add_parser("proof", help="Preuves de contrôle des nœuds / nodes' proofs of control")
    proofs.add_argument("--json", action="store_true")
    proofs.set_defaults(handler=cmd_proof)
    pia = sub.add_parser("pia", help="Enregistrer l’EFVP (Loi 25) / record the privacy impact assessment")
    pia.add_argument("slug")
    pia.add_argument("--note", default="", help="Référence de l’évaluation / reference of the assessment")
    pia.set_defaults(handler=cmd_pia)
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
    for action, text in (
        ("suspend", "Suspendre avec ses nœuds / suspend with its nodes"),
        ("reinstate", "Rétablir avec ses nœuds / reinstate with its nodes"),
        ("exclude", "Exclure, ses nœuds retirés / exclude, its nodes retired"),
    ):
        governed = hsub.add_parser(action, help=text)
        governed.add_argument("slug")
        governed.add_argument("--reason", required=action != "reinstate", default="")
        governed.set_defaults(handler=_hoster_governance(action))
