"""The common tail of the endpoints a client calls with its credentials: token (``token.py``),
introspection (``introspection.py``) and revocation (``revocation.py``).

Each reads the form body (a malformed or oversized body is ``invalid_request``, RFC 6749 §5.2),
fetches a ``private_key_jwt`` client's ``jwks_uri`` before any database work (``client_keys.prefetch``:
no network wait inside a transaction), runs its work in one unit of work and answers with authlib's
status, body and headers. Only the work differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portail.config import Settings
from portail.oidc import client_cache, client_keys
from portail.oidc.client_keys import RemoteKeys
from portail.oidc.server import Answer, HttpInput, InputError, read_input, to_response
from portail.web import json_error


class Work(Protocol):
    """An endpoint's work; ``on_trust``: it may take its client from the cache on trust
    (``client_cache``: confirmed before it answers, else ``StaleClient``)."""

    def __call__(
        self, db: Session, settings: Settings, inp: HttpInput, remote_keys: RemoteKeys | None, *, on_trust: bool = False
    ) -> Answer: ...


async def answer(
    request: Request,
    work: Work,
    *,
    short: bool = True,
    autocommit: Callable[[HttpInput], bool] | None = None,
    on_trust: Callable[[HttpInput], bool] | None = None,
    observe: Callable[[HttpInput, Answer], None] | None = None,
) -> Response:
    """Run ``work`` for this request. ``short``: a few hundred microseconds of database work
    (``Database.run_short``); ``autocommit(inp)``: True when this request's statements need not be
    one transaction (``Database.run_autocommit``); ``on_trust(inp)``: True when the work may take its
    client from the cache on trust (one statement fewer; run again strictly if the client changed);
    ``observe`` sees the input and the answer (metrics)."""
    try:
        inp = await read_input(request)
    except InputError as exc:
        return json_error("invalid_request", str(exc).capitalize(), 400)
    state = request.app.state
    remote = await client_keys.prefetch(state.db, state.settings, state.client_keys, inp)
    run = state.db.run_short if short else state.db.run
    if short and autocommit is not None and autocommit(inp):
        run = state.db.run_autocommit
    trusted = on_trust is not None and remote is None and not inp.first("client_assertion") and on_trust(inp)
    try:
        result: Answer = await run(work, state.settings, inp, remote, on_trust=trusted)
    except client_cache.StaleClient:
        result = await run(work, state.settings, inp, remote)
    if observe is not None:
        observe(inp, result)
    return to_response(result)
