"""The one reader of JSON request bodies (RFC 8259), used by every endpoint that takes JSON: dynamic
client registration (RFC 7591 §3.1, RFC 7592 §2.2) and every ``/api/v1/`` endpoint.

A body is refused before the endpoint looks at it when:

- its ``Content-Type`` is not ``application/json`` (nor ``application/<something>+json``): 415;
- it is larger than the endpoint's limit (``DEFAULT_MAX_BYTES`` unless the endpoint says more): 413,
  checked on ``Content-Length`` first, then while reading, so a large body is never held whole;
- it is empty, not UTF-8 (RFC 8259 §8.1), not JSON, or uses ``NaN``/``Infinity`` (not JSON): 400;
- it nests arrays and objects deeper than ``MAX_DEPTH``: 400 (Python's parser would crash at ~1,000);
- a string, key or value, holds an unpaired surrogate (``"\\ud800"`` is valid JSON but not Unicode,
  RFC 8259 §8.2, and cannot be stored or sent back) or a control character other than tab, line feed
  and carriage return (PostgreSQL cannot store NUL): 400;
- it is not a JSON object when the endpoint wants one: 400.

``JsonBodyError`` carries the status and an English description; each endpoint answers it in its
own error format (RFC 7591 JSON for registration, ``{"error", "error_description"}`` under
``/api/v1/``). An endpoint that answers part by part (the push API's batches) reads with
``inspect=False`` and asks ``problem()`` about each part, so one bad part does not sink the others.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

DEFAULT_MAX_BYTES = 64 * 1024
MAX_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNACCEPTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")  # one search per string


class JsonBodyError(Exception):
    """A JSON body refused by the reader: ``status`` (400, 413 or 415) and an English description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or a structured ``+json`` type (RFC 6839 §3.1), parameters ignored."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def text_problem(text: str) -> str | None:
    """Why a string cannot be accepted (unpaired surrogate, control character), or None."""
    if _UNACCEPTABLE.search(text) is None:
        return None
    if _SURROGATE.search(text):
        return "a string contains an unpaired surrogate (not valid Unicode)"
    return "a string contains a control character"


def problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """The first reason ``value`` (parsed JSON) cannot be accepted, or None: nesting deeper than
    ``max_depth`` containers, or a bad string (``text_problem``). Iterative (never recurses), and
    only containers are queued: a megabyte of JSON is walked in tens of milliseconds."""
    bad = _UNACCEPTABLE.search
    if type(value) is str:
        return text_problem(value) if bad(value) else None
    pending: list[tuple[Any, int]] = [(value, 0)] if type(value) in (list, dict) else []
    while pending:
        node, depth = pending.pop()
        if depth >= max_depth:
            return f"the JSON is nested more than {max_depth} levels deep"
        if type(node) is dict:
            for key in node:
                if bad(key):
                    return text_problem(key)
            items = node.values()
        else:
            items = node
        for item in items:
            kind = type(item)
            if kind is str:
                if bad(item):
                    return text_problem(item)
            elif kind is list or kind is dict:
                pending.append((item, depth + 1))
    return None


def parse(raw: bytes, *, want_object: bool = True, inspect: bool = True) -> Any:
    """Parse a body already read; raise ``JsonBodyError`` (400) when refused (see the module docstring)."""
    if not raw.strip():
        raise JsonBodyError(400, "The body is empty; a JSON document is expected")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError(400, "The body is not UTF-8") from exc
    try:
        value = json.loads(text.removeprefix("\ufeff"), parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise JsonBodyError(400, f"The JSON is nested more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise JsonBodyError(400, "The body is not valid JSON") from exc
    if want_object and not isinstance(value, dict):
        raise JsonBodyError(400, "The body must be a JSON object")
    if inspect:
        found = problem(value)
        if found:
            raise JsonBodyError(400, found[0].upper() + found[1:])
    return value


async def read_json(
    request: Request,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    want_object: bool = True,
    inspect: bool = True,
    allow_empty: bool = False,
) -> Any:
    """Read and check the request's JSON body (see the module docstring); raise ``JsonBodyError``.
    With ``allow_empty``, an empty body needs no content type and stands for ``{}``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > max_bytes):
        raise JsonBodyError(413, f"The body is larger than {max_bytes} bytes")
    if hasattr(request, "_body"):  # already read (and cached) by Starlette's request.body()
        body = bytearray(await request.body())
        if len(body) > max_bytes:
            raise JsonBodyError(413, f"The body is larger than {max_bytes} bytes")
    else:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise JsonBodyError(413, f"The body is larger than {max_bytes} bytes")
        # Starlette's own cache: a caller that must see the raw bytes too (a webhook's signature) can
        # then call request.body() after this reader.
        request._body = bytes(body)
    if allow_empty and not body.strip():
        return {}
    if not is_json_media_type(request.headers.get("content-type", "")):
        raise JsonBodyError(415, "Content-Type must be application/json")
    return parse(bytes(body), want_object=want_object, inspect=inspect)
