"""Generated client ids are safe as command-line arguments and URL path segments."""

from __future__ import annotations

import re

from portail.oidc.clients import new_client_id


def test_generated_client_ids_never_look_like_an_option() -> None:
    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{24}", value) for value in ids)
