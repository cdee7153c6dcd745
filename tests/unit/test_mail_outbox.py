"""``make run`` announces each mail written to ``var/outbox/`` on the console: its path and subject (issue 12)."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

from portail import mail
from tests.conftest import make_settings


def test_each_mail_written_to_the_outbox_is_announced_with_its_path_and_subject(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'portail.db'}")
    console = io.StringIO()
    mail.announce_outbox(console)
    mail.announce_outbox(console)  # twice is once
    message = EmailMessage()
    message["To"], message["From"], message["Subject"] = "alice@example.org", "portail@example.org", "Vérifiez"
    message.set_content("Bonjour")
    try:
        path = mail.deliver(settings, message)
    finally:
        for handler in list(mail.outbox_log.handlers):
            mail.outbox_log.removeHandler(handler)
    assert path is not None and path.exists()
    assert console.getvalue() == f"Courriel écrit / mail written: {path} — Vérifiez\n"
    assert "alice@example.org" not in console.getvalue()
