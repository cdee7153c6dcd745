"""JWT client assertions (RFC 7523 §3, ``private_key_jwt``): how long one may live, and the replay
records that make each ``jti`` single use (§3 item 7).

- **Lifetime**: an assertion proves the client holds its key *now*; it is made for one request and
  sent at once. Portail refuses (``invalid_client``) one that lives longer than ``MAX_LIFETIME``
  (10 minutes, counted from ``iat`` when given, else from now): enough for slow clocks and retries,
  short enough that a leaked assertion is soon useless and the replay records stay few. Other
  providers cap it alike (5 to 10 minutes is common; Okta allows at most one hour).
- **Replay records**: ``sha256(client_id, jti)`` is kept until the assertion can no longer be
  accepted (its ``exp`` plus the clock leeway), never less, so a replay inside its lifetime is always
  caught; ``purge_expired`` deletes the records past that point (every minute, the
  ``assertion-purge`` task of the background runner, registered by ``backchannel.register_tasks``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from portail.oidc.models import ClientAssertion
from portail.oidc.upserts import insert_ignore

MAX_LIFETIME = dt.timedelta(minutes=10)
LEEWAY = dt.timedelta(seconds=30)  # clock skew allowed on exp/iat (``PrivateKeyJWT``)


def lifetime_problem(claims: dict[str, Any], now: dt.datetime) -> str | None:
    """Why the assertion lives too long, or None (``exp`` itself is checked by authlib)."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None  # missing or malformed exp: authlib refuses it
    start = now.timestamp()
    if isinstance(iat, int | float) and not isinstance(iat, bool):
        if iat > start + LEEWAY.total_seconds():
            return "The assertion was issued in the future (iat)"
        start = min(start, iat)
    if exp - start > (MAX_LIFETIME + LEEWAY).total_seconds():
        minutes = int(MAX_LIFETIME.total_seconds() // 60)
        return f"The assertion lives too long: at most {minutes} minutes between iat (or now) and exp"
    return None


def record_use(db: Session, client_id: str, jti: str, exp: float) -> bool:
    """Record the assertion's ``jti`` until it expires; False when it was already used (a replay)."""
    digest = hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()
    keep_until = dt.datetime.fromtimestamp(exp, dt.UTC) + LEEWAY
    return insert_ignore(db, ClientAssertion, {"jti_hash": digest, "expires_at": keep_until})


def purge_expired(db: Session, now: dt.datetime) -> int:
    """Delete the replay records of assertions that can no longer be accepted; how many."""
    result = db.execute(sa.delete(ClientAssertion).where(col(ClientAssertion.expires_at) < now))  # type: ignore[call-overload]
    return int(getattr(result, "rowcount", 0) or 0)
