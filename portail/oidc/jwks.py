"""The JSON Web Key Set (RFC 7517 §5) of the provider: public keys of every key that signs or
signed tokens still valid (see keys.py for rotation)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response


async def jwks(request: Request) -> Response:
    body = json.dumps(request.app.state.keys.jwks()).encode()  # the application's KeyRing
    return Response(
        body,
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
