"""In-process cost of one token-endpoint request, userinfo and introspection, without HTTP.

Builds a throw-away SQLite (or PostgreSQL, ``--database-url``) Portail with the bench member and
client of ``bench/oidc.py``, then times N iterations of each operation at two levels:

* ``domain``: the domain call on a database thread's unit of work (``Database.call``), i.e. what
  the route hands to ``db.run`` (ORM/Core, authlib, signing, JSON of the claims);
* ``asgi``: the whole application (middleware, routing, form parsing, thread-pool hop, JSON
  response), driven in-process through ``httpx.ASGITransport`` on one event loop.

It prints CPU microseconds per operation (``time.process_time``: steadier than wall-clock on a
shared machine) and, with ``--profile NAME``, a cProfile of that operation sorted by cumulative
time.

    .venv/bin/python bench/oidc_profile.py -n 2000
    .venv/bin/python bench/oidc_profile.py -n 2000 --profile refresh
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from oidc import CLIENT_ID, CLIENT_SECRET, EMAIL, PASSWORD, REDIRECT_URI, SCOPE, _prepare_portail  # noqa: E402

BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def _settings(url: str, var_dir: Path, issuer: str) -> Any:
    from portail.config import load_settings

    return load_settings(
        environ={},
        toml_path=var_dir / "absent.toml",
        issuer=issuer,
        database_url=url,
        var_dir=str(var_dir),
        secret_key="bench-secret-key-" + "x" * 32,
        create_admin_on_first_run=False,
        instances_file=str(var_dir / "none.toml"),
    )


async def _main(args: argparse.Namespace) -> None:
    from oidc_provider.probe import pkce_pair

    from portail.app import create_app

    with tempfile.TemporaryDirectory(prefix="portail-prof-") as tmp:
        var_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{var_dir / 'portail.db'}"
        issuer = "http://127.0.0.1:8000"
        _prepare_portail(url, var_dir, issuer)
        app = create_app(_settings(url, var_dir, issuer))
        if args.profile or args.inline:
            # cProfile sees one thread: run the database work inline so that it shows up.
            async def inline(fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
                return app.state.db.call(fn, *a, **kw)

            async def inline_autocommit(fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
                return app.state.db.call_autocommit(fn, *a, **kw)

            app.state.db.run = inline
            app.state.db.run_autocommit = inline_autocommit
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=issuer) as client:
                page = await client.get("/login")
                csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                await client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf})

                async def authorize() -> tuple[str, str]:
                    verifier, challenge = pkce_pair()
                    query = urlencode(
                        {
                            "client_id": CLIENT_ID,
                            "response_type": "code",
                            "redirect_uri": REDIRECT_URI,
                            "scope": SCOPE,
                            "state": "s",
                            "nonce": "n",
                            "code_challenge": challenge,
                            "code_challenge_method": "S256",
                        }
                    )
                    r = await client.get(f"/authorize?{query}")
                    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0], verifier

                async def exchange() -> dict[str, Any]:
                    code, verifier = await authorize()
                    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
                    r = await client.post(
                        "/token", data={**data, "code_verifier": verifier}, headers={"Authorization": BASIC}
                    )
                    assert r.status_code == 200, r.text
                    return dict(r.json())

                tokens = await exchange()
                state = {"refresh": tokens["refresh_token"]}
                access = tokens["access_token"]
                cookies = dict(client.cookies)
                client.cookies.clear()

                async def refresh() -> None:
                    r = await client.post(
                        "/token",
                        data={"grant_type": "refresh_token", "refresh_token": state["refresh"]},
                        headers={"Authorization": BASIC},
                    )
                    assert r.status_code == 200, r.text
                    state["refresh"] = r.json()["refresh_token"]

                async def userinfo() -> None:
                    r = await client.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
                    assert r.status_code == 200, r.text

                async def introspect() -> None:
                    r = await client.post("/introspect", data={"token": access}, headers={"Authorization": BASIC})
                    assert r.status_code == 200 and r.json()["active"], r.text

                async def client_credentials() -> None:
                    r = await client.post(
                        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": BASIC}
                    )
                    assert r.status_code == 200, r.text

                async def authcode() -> None:
                    client.cookies.update(cookies)
                    try:
                        await exchange()
                    finally:
                        client.cookies.clear()

                async def discovery() -> None:
                    r = await client.get("/.well-known/openid-configuration")
                    assert r.status_code == 200

                from portail.oidc import tokens as token_module
                from portail.oidc.userinfo import claims_for

                db, settings = app.state.db, app.state.settings

                async def check_token() -> None:
                    db.call(token_module.check_access_token, settings, access)

                async def userinfo_domain() -> None:
                    db.call(claims_for, settings, access)

                ops: dict[str, Callable[[], Any]] = {
                    "check_token (domain)": check_token,
                    "userinfo (domain)": userinfo_domain,
                    "discovery": discovery,
                    "userinfo": userinfo,
                    "introspect": introspect,
                    "refresh": refresh,
                    "client_credentials": client_credentials,
                    "authcode": authcode,
                }
                names = [args.profile] if args.profile else list(ops)
                if args.statements:
                    await _print_statements(db.engine, names, ops)
                    names = []
                for name in names:
                    op = ops[name]
                    for _ in range(min(200, args.n)):
                        await op()
                    profiler = cProfile.Profile() if args.profile else None
                    cpu0 = time.process_time()
                    if profiler:
                        profiler.enable()
                    for _ in range(args.n):
                        await op()
                    if profiler:
                        profiler.disable()
                    cpu = (time.process_time() - cpu0) / args.n
                    print(f"{name:<20} {cpu * 1e6:>8.0f} µs CPU per operation (asgi, client included)", flush=True)
                    if profiler:
                        stats = pstats.Stats(profiler).sort_stats(args.sort)
                        stats.print_stats(args.filter or None, args.lines)
                        if os.environ.get("PROFILE_DUMP"):
                            stats.dump_stats(os.environ["PROFILE_DUMP"])
        app.state.db.dispose()


async def _print_statements(engine: Any, names: list[str], ops: dict[str, Callable[[], Any]]) -> None:
    """The SQL statements one run of each operation sends (``--statements``; BEGIN and COMMIT are
    not statements here)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:160])

    event.listen(engine, "before_cursor_execute", record)
    try:
        for name in names:
            seen.clear()
            await ops[name]()
            print(f"{name}: {len(seen)} statements")
            for statement in seen:
                print("    " + statement)
    finally:
        event.remove(engine, "before_cursor_execute", record)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--profile", default="")
    ap.add_argument("--inline", action="store_true", help="run database work on the event loop's thread")
    ap.add_argument("--sort", default="cumulative")
    ap.add_argument("--statements", action="store_true", help="print the SQL statements of one run of each operation")
    ap.add_argument("--lines", type=int, default=45)
    ap.add_argument("--filter", default="", help="regular expression on the profile's lines, e.g. portail/")
    asyncio.run(_main(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
