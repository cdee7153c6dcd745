"""Client-wide revocation by generation (``tokens._revoked_with_client``): a token is revoked with
its client when its ``cgen`` is older than the client's; a malformed ``cgen`` is refused; tokens
issued before the claim existed fall back to comparing ``iat`` with ``tokens_revoked_at``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from portail.oidc.models import OAuthClient
from portail.oidc.tokens import CLIENT_GENERATION, _revoked_with_client

REVOKED_AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _client(generation: int, revoked_at: dt.datetime | None = REVOKED_AT) -> OAuthClient:
    return OAuthClient(client_id="c", name="C", token_generation=generation, tokens_revoked_at=revoked_at)


@pytest.mark.parametrize(
    ("claim", "client_generation", "revoked"),
    [(0, 0, False), (2, 2, False), (1, 2, True), (0, 1, True), (3, 2, False), (True, 1, True), ("2", 1, True)],
)
def test_a_token_is_revoked_when_its_generation_is_older_or_malformed(
    claim: Any, client_generation: int, revoked: bool
) -> None:
    # iat long after the revocation time: only the generation decides
    iat = int(REVOKED_AT.timestamp()) + 3600
    assert _revoked_with_client(_client(client_generation), {CLIENT_GENERATION: claim}, iat) is revoked


def test_a_token_without_generation_is_judged_by_its_issue_time() -> None:
    at = int(REVOKED_AT.timestamp())
    assert _revoked_with_client(_client(1), {}, at) is True
    assert _revoked_with_client(_client(1), {}, at - 10) is True
    assert _revoked_with_client(_client(1), {}, at + 1) is False
    assert _revoked_with_client(_client(0, revoked_at=None), {}, at) is False
