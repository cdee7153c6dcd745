"""Submit a form the way a browser does: with the CSRF token inside that very form."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

FORM_RE = re.compile(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', re.S)


def own_token(html: str, action: str) -> str:
    """The CSRF token of the form posting to ``action`` (asserting it has a non-empty one)."""
    for found, body in FORM_RE.findall(html):
        if found == action:
            match = re.search(r'name="csrf_token" value="([^"]*)"', body)
            assert match and match.group(1), f"the form {action} has no CSRF token"
            return match.group(1)
    raise AssertionError(f"no form posting to {action}")


def submit(client: TestClient, page_url: str, action: str, data: dict[str, str], **kwargs: Any) -> Any:
    """GET ``page_url``, then POST ``data`` to ``action`` with that form's own token."""
    page = client.get(page_url)
    return client.post(action, data={"csrf_token": own_token(page.text, action), **data}, **kwargs)
