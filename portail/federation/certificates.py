"""When a node's TLS certificate expires, and the warning its hoster gets ``CERT_WARNING_DAYS`` ahead.

The prober's round reads each https node's certificate (``not_after``) after its health probe: a TLS
handshake to the address the outbound guard resolved and checked (``outbound.resolve``: the same
rules as every fetch), under ``outbound_timeout_seconds``. Only the expiry date is read, so the
handshake does not verify the chain (the health probe itself does, through the guard's client).
The date is kept in ``Instance.extra["tls_expires_at"]``; when it falls within ``CERT_WARNING_DAYS``
the hoster is mailed once per certificate (``extra["tls_warned_for"]`` = the date warned about).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from urllib.parse import urlsplit

from cryptography import x509
from sqlmodel import Session

from portail.accounts.members import audit
from portail.config import Settings
from portail.db import utcnow
from portail.federation import notice_mail
from portail.federation.models import Hoster, Instance
from portail.outbound import Refused, resolve
from portail.web import N_

CERT_WARNING_DAYS = 14


async def expiry(settings: Settings, base_url: str) -> dt.datetime | None:
    """The ``not_after`` of the certificate ``base_url`` presents; ``None`` for http or on any failure."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    port = parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the date only (see module docstring)
    writer = None
    try:
        address = await resolve(parts.hostname, port, settings)
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=context, server_hostname=parts.hostname),
            settings.outbound_timeout_seconds,
        )
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return x509.load_der_x509_certificate(der).not_valid_after_utc if der else None
    except (Refused, OSError, TimeoutError, ValueError, ssl.SSLError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


def record_expiry(db: Session, settings: Settings, instance_id: int, not_after: dt.datetime) -> bool:
    """Store the date; mail the hoster once when it is within ``CERT_WARNING_DAYS``. True when mailed."""
    instance = db.get(Instance, instance_id)
    if instance is None:
        return False
    stamp = not_after.isoformat()
    extra = {**instance.extra, "tls_expires_at": stamp}
    warn = not_after - utcnow() <= dt.timedelta(days=CERT_WARNING_DAYS) and extra.get("tls_warned_for") != stamp
    if warn:
        extra["tls_warned_for"] = stamp
    instance.extra = extra
    db.add(instance)
    hoster = db.get(Hoster, instance.hoster_id) if instance.hoster_id else None
    if not warn or hoster is None:
        return False
    audit(db, "instance.certificate_expiring", subject_type="instance", subject_id=instance.slug, reason=stamp)
    notice_mail.send(
        settings,
        notice_mail.hoster_recipients(db, settings, hoster),
        N_("Certificat TLS bientôt expiré : %(instance)s"),
        N_("Le certificat TLS de %(instance)s (%(url)s) expire le %(date)s. Renouvelez-le avant cette date."),
        link=f"{settings.issuer}/federation/instances/{instance.slug}",
        instance=instance.name,
        url=instance.base_url,
        date=not_after.date().isoformat(),
    )
    return True
