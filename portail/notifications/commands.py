"""``portail notifications …``: send the digests that are due, purge old notifications, pull now."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from portail.config import Settings
from portail.db import Database
from portail.notifications import digests, inbox
from portail.notifications.aggregator import Aggregator
from portail.notifications.hub import nextcloud_token
from portail.oidc import keys
from portail.oidc.commands import open_database
from portail.outbound import PinnedTransport


def _open(settings: Settings) -> Database:
    return open_database(settings)


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    db = _open(settings)
    try:
        sent = db.call(digests.send_due, settings, args.period)
    finally:
        db.dispose()
    print(f"Résumés envoyés / digests sent: {sent}")
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    db = _open(settings)
    try:
        removed = db.call(inbox.purge, settings.notification_retention_days)
    finally:
        db.dispose()
    print(f"Notifications supprimées / notifications purged: {removed}")
    return 0


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    db = _open(settings)
    keys.install(db, settings)  # Nextcloud is pulled with a signed access token

    async def run() -> int:
        aggregator = Aggregator(db, settings, minter=nextcloud_token, transport=PinnedTransport(settings))
        try:
            return await aggregator.refresh_all()
        finally:
            await aggregator.aclose()

    try:
        count = asyncio.run(run())
    finally:
        db.dispose()
    print(f"Membres rafraîchis / members refreshed: {count}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("notifications", help="Notifications : résumés, purge / digests, purge")
    sub = parser.add_subparsers(dest="notifications_command", required=True)
    digest = sub.add_parser("digest", help="Envoyer les résumés dus / send the digests that are due")
    digest.add_argument("--period", choices=sorted(digests.PERIODS), default=None)
    digest.set_defaults(handler=cmd_digest)
    sub.add_parser("purge", help="Supprimer les notifications expirées / purge expired notifications").set_defaults(
        handler=cmd_purge
    )
    sub.add_parser("pull", help="Tirer les sources maintenant / pull sources now").set_defaults(handler=cmd_pull)
