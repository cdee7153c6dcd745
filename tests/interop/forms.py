"""Drive Portail's HTML pages over HTTP without a browser: follow redirects by hand, submit forms.

Interop tests walk a whole SSO journey (peer → Portail → login → consent → peer) with one
``httpx.Client`` (its cookie jar plays the browser) and these helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

MAX_HOPS = 20
LOOPBACK = ("localhost", "localhost.local", "127.0.0.1")


def browser() -> httpx.Client:
    """An HTTP client that keeps cookies like a browser and never follows redirects by itself.

    Like a browser, it treats http://localhost as a secure context: Synapse marks its OIDC session
    cookies ``Secure`` even on plain http, and Python's cookie jar would never send them back.
    """
    return treat_loopback_as_secure(httpx.Client(timeout=30))


def treat_loopback_as_secure(client: httpx.Client) -> httpx.Client:
    """Send back ``Secure`` cookies set over plain http by a loopback host, as browsers do."""

    def loopback_cookies_are_secure_enough(response: httpx.Response) -> None:
        for cookie in client.cookies.jar:
            if cookie.secure and cookie.domain in LOOPBACK:
                cookie.secure = False

    client.event_hooks["response"] = [*client.event_hooks.get("response", []), loopback_cookies_are_secure_enough]
    return client


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and values.get("name"):
            if values.get("type", "text") not in ("checkbox", "radio") or "checked" in values:
                self._current.fields[values["name"]] = values.get("value", "")
        elif self._current is not None and tag == "button" and values.get("name"):
            self._current.buttons.append((values["name"], values.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_in(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def walk(http: httpx.Client, url: str, stop: str) -> tuple[str, httpx.Response | None]:
    """GET ``url`` and follow redirects until a Location starts with ``stop`` (returned, not fetched)
    or a page answers without redirecting (returned with that response)."""
    for _hop in range(MAX_HOPS):
        if url.startswith(stop):
            return url, None
        response = http.get(url)
        if response.status_code in (301, 302, 303, 307, 308):
            url = urljoin(url, response.headers["location"])
            continue
        return url, response
    raise AssertionError(f"too many redirects, last at {url}")


def submit(
    http: httpx.Client, page_url: str, html: str, *, button: tuple[str, str] | None = None, **values: str
) -> httpx.Response:
    """Submit the form of ``html`` that has ``button`` (or the first one with the given fields)."""
    candidates = forms_in(html)
    if button is not None:
        candidates = [f for f in candidates if button in f.buttons]
    else:
        candidates = [f for f in candidates if all(name in f.fields or f.method == "post" for name in values)]
        candidates = [
            f for f in candidates if f.method == "post" and "csrf_token" in f.fields and f.action != "/language"
        ]
    assert candidates, f"no matching form on {page_url}"
    form = candidates[0]
    data = {**form.fields, **values}
    if button is not None:
        data[button[0]] = button[1]
    target = urljoin(page_url, form.action or page_url)
    if form.method == "post":
        return http.post(target, data=data)
    return http.get(target, params=data)
