"""Outgoing mail: rendered from ``templates/mail/<name>.txt`` and ``.html`` in the recipient's language.

With ``smtp_url`` set, mail goes through SMTP (``smtp://`` with STARTTLS when offered, ``smtps://``
for implicit TLS); otherwise each message is written to ``<var_dir>/outbox/`` as an ``.eml`` file and
the fact (never the content, which may hold a link) is logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from markupsafe import Markup

from portail.config import Settings
from portail.db import after_commit
from portail.web import TEMPLATES_ENV, translator

log = logging.getLogger("portail.mail")
# One line per mail written to the outbox (path and subject, no address): ``portail serve`` shows it on the
# console (``announce_outbox``), so whoever runs ``make run`` knows where the sign-up link went.
outbox_log = logging.getLogger("portail.mail.outbox")


class _Headers(HeaderRegistry):
    """The standard header registry, with each header's class built once.

    ``HeaderRegistry`` builds a new class (``type(...)``) for every header of every message; a digest
    run of thousands of mails spent a third of its time there and left as many classes for the
    garbage collector."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


POLICY = default_policy.clone(header_factory=_Headers())


def announce_outbox(stream: TextIO) -> None:
    """Print each mail written to the outbox on ``stream`` (once per process, however often called)."""
    if any(getattr(h, "portail_outbox", False) for h in outbox_log.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.portail_outbox = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(message)s"))
    outbox_log.addHandler(handler)
    outbox_log.setLevel(logging.INFO)


def compose(settings: Settings, to: str, template: str, locale: str, context: dict[str, Any]) -> EmailMessage:
    catalogue = translator(locale)

    def gettext_(message: str, **params: Any) -> Markup:
        text = catalogue.gettext(message)
        return Markup(text) % params if params else Markup(text)  # noqa: S704 - catalogue text is ours

    def plain_gettext(message: str, **params: Any) -> str:
        text = catalogue.gettext(message)
        return text % params if params else text

    values = {"locale": locale, "settings": settings, **context}
    subject = plain_gettext(context["subject"], **context.get("subject_params", {}))
    text = TEMPLATES_ENV.get_template(f"mail/{template}.txt").render({**values, "_": plain_gettext})
    html = TEMPLATES_ENV.get_template(f"mail/{template}.html").render({**values, "_": gettext_})
    message = EmailMessage(policy=POLICY)
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="portail")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message["Content-Language"] = locale  # after the parts, or it would move into the first one
    return message


def deliver(settings: Settings, message: EmailMessage) -> Path | None:
    """Send through SMTP, or write to the outbox; returns the outbox file when written there."""
    if settings.smtp_url:
        parts = urlsplit(settings.smtp_url)
        host, port = parts.hostname or "localhost", parts.port
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port or 465, timeout=10, context=context)
        else:
            smtp = smtplib.SMTP(host, port or 25, timeout=10)
        with smtp:
            if parts.scheme != "smtps" and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
        log.info("mail sent to %s: %s", message["To"], message["Subject"])
        return None
    outbox = settings.outbox_path
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{uuid.uuid4().hex}.eml"
    path.write_bytes(bytes(message))
    log.info("mail for %s written to %s: %s", message["To"], path, message["Subject"])
    outbox_log.info("Courriel écrit / mail written: %s — %s", path, message["Subject"])
    return path


def send(settings: Settings, to: str, template: str, locale: str, **context: Any) -> None:
    """Compose now; deliver once the current unit of work commits (never for work that rolls back,
    and never while a transaction is open), or at once outside one."""
    message = compose(settings, to, template, locale, context)
    after_commit(lambda: _deliver_logged(settings, message))


def _deliver_logged(settings: Settings, message: EmailMessage) -> None:
    try:
        deliver(settings, message)
    except Exception:  # SMTP refusal, network error, full disk: what the mail reports is done already
        log.exception("mail to %s could not be sent: %s", message["To"], message["Subject"])
