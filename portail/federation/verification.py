"""Hoster-supplied URLs are untrusted: the domain-proof challenge a hoster serves on its node, and the
audit of refused URLs. The outbound guard itself (``fetch``, ``PinnedTransport``, ``Refused``…) lives in
``portail.outbound`` (below every package that makes outbound requests) and is re-exported here.
"""

from __future__ import annotations

import hmac
import secrets

from sqlmodel import Session

from portail.accounts.members import audit
from portail.config import Settings
from portail.outbound import (
    MAX_REDIRECTS,
    USER_AGENT,
    Fetched,
    PinnedTransport,
    Refused,
    address_problem,
    check_syntax,
    check_url,
    client,
    fetch,
    resolve,
)

__all__ = [
    "CHALLENGE_PATH",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "Fetched",
    "PinnedTransport",
    "Refused",
    "address_problem",
    "audit_refusal",
    "challenge_matches",
    "challenge_url",
    "check_syntax",
    "check_url",
    "client",
    "fetch",
    "fetch_challenge",
    "new_challenge",
    "resolve",
]

CHALLENGE_PATH = "/.well-known/portail-challenge"


def audit_refusal(
    db: Session, refused: Refused, url: str, *, actor_id: int | None, subject_type: str, subject_id: str
) -> None:
    """Record a refused outbound URL in the audit log (who, which URL, why)."""
    audit(
        db,
        "federation.url_refused",
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        reason=f"{refused.code} {url[:300]}: {refused}",
    )


# ---------------------------------------------------------------- challenge


def new_challenge() -> str:
    return "portail-" + secrets.token_urlsafe(32)


def challenge_url(base_url: str) -> str:
    return base_url.rstrip("/") + CHALLENGE_PATH


def challenge_matches(expected: str, body: bytes) -> bool:
    """The node must serve exactly the token (surrounding whitespace ignored)."""
    served = body.strip()[:200]
    return hmac.compare_digest(served, expected.encode())


async def fetch_challenge(settings: Settings, base_url: str, expected: str) -> None:
    """Fetch the challenge through the guard; raises ``Refused`` unless the node serves ``expected``."""
    fetched = await fetch(settings, challenge_url(base_url), accept="text/plain", max_bytes=4096)
    if fetched.status == 404:
        raise Refused("challenge-absent", "Le jeton est introuvable à %(url)s (erreur 404).", url=fetched.url)
    if fetched.status != 200:
        raise Refused(
            "challenge-status",
            "%(url)s a répondu %(http_status)s au lieu de 200.",
            url=fetched.url,
            http_status=fetched.status,
        )
    if not challenge_matches(expected, fetched.body):
        raise Refused(
            "challenge-mismatch",
            "Le contenu servi à %(url)s ne correspond pas au jeton attendu.",
            url=fetched.url,
        )
