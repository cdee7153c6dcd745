"""Templates: every one compiles, and the ``csrf()`` macro renders the page's token however it is imported.

(Jinja imports macros without the caller's context by default; a macro reading ``csrf_token`` from the
context would then render an empty token and every form using it would be refused.)
"""

from __future__ import annotations

import pytest
from jinja2 import ChoiceLoader, DictLoader
from starlette.applications import Starlette
from starlette.requests import Request

from portail.config import Settings
from portail.web import TEMPLATES, TEMPLATES_ENV, render
from tests.conftest import csrf_from


def test_every_template_compiles() -> None:
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix in {".html", ".txt"}:
            TEMPLATES_ENV.get_template(path.relative_to(TEMPLATES).as_posix())


@pytest.mark.parametrize("statement", ["import csrf", "import csrf with context"])
def test_the_csrf_macro_renders_the_page_token(
    unit_settings: Settings, monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    probe = (
        '{% extends "base.html" %}{% from "_macros.html" ' + statement + " %}"
        "{% block content %}<form>{{ csrf() }}</form>{% endblock %}"
    )
    monkeypatch.setattr(
        TEMPLATES_ENV, "loader", ChoiceLoader([DictLoader({"probe.html": probe}), TEMPLATES_ENV.loader])
    )
    app = Starlette()
    app.state.settings = unit_settings
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": [], "app": app})
    html = render(request, "probe.html").body.decode()
    assert html.count('name="csrf_token"') == 2  # the language form of the header and the probe's form
    csrf_from(html)  # every token of the page is the same, non-empty one
