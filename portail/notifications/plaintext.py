"""Plain text from whatever a tool sends: tags dropped, entities decoded, whitespace collapsed.

Notifications are shown as text only (never as HTML), so a tool cannot inject markup into the
portal; ``<script>`` and ``<style>`` contents are dropped entirely, block elements become spaces.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "template", "head", "title"}
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skipping:
            self.skipping -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def plain(value: str, limit: int) -> str:
    """``value`` as one line of plain text, at most ``limit`` characters (an ellipsis marks a cut)."""
    parser = _Text()
    parser.feed(value)
    parser.close()
    text = _SPACES.sub(" ", _CONTROL.sub("", "".join(parser.parts))).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
