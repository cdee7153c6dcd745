"""Mail to the member about their data (deletion scheduled or cancelled, export ready).

A mail that cannot be sent is logged and never undoes what it reports: a login, a deletion request
or an export must not fail because the mail server is down.
"""

from __future__ import annotations

import logging
from typing import Any

from portail import mail
from portail.config import Settings

log = logging.getLogger("portail.consent.data_mail")


def tell(settings: Settings, to: str, template: str, locale: str, **context: Any) -> bool:
    """Send ``templates/mail/<template>``; returns False (and logs) when it could not be sent."""
    try:
        mail.send(settings, to, template, locale, **context)
    except Exception:  # SMTP refusals, network errors, a full disk for the outbox
        log.exception("mail %s could not be sent", template)
        return False
    return True
