"""The menu's CORS rule: only the exact origins of registered, active instances may read it."""

from __future__ import annotations

from portail.dashboard import widget
from portail.db import Database
from tests import seed


def test_origin_of_keeps_scheme_host_and_non_default_port() -> None:
    assert widget.origin_of("https://Nuage.Example/apps/x?y#z") == "https://nuage.example"
    assert widget.origin_of("https://nuage.example:443/") == "https://nuage.example"
    assert widget.origin_of("http://127.0.0.1:8081/") == "http://127.0.0.1:8081"
    assert widget.origin_of("http://[::1]:9000/x") == "http://[::1]:9000"
    assert widget.origin_of("javascript:alert(1)") is None
    assert widget.origin_of("null") is None
    assert widget.origin_of("https://host:99999") is None


def test_only_exact_origins_of_active_instances_are_allowed(db: Database) -> None:
    with db.session() as s:
        seed.instance(s, "nuage", "Nuage", base_url="https://nuage.encommun.example")
        seed.instance(s, "slash", "Slash", base_url="https://slash.encommun.example/")
        seed.instance(s, "sous", "Sous-dossier", base_url="https://outils.example/nextcloud")
        seed.instance(s, "port", "Port", base_url="http://127.0.0.1:8081")
        seed.instance(s, "arret", "Suspendu", base_url="https://arret.encommun.example", status="suspended")
        seed.instance(s, "joker", "Joker", base_url="https://a_b.example/x")
    with db.session() as s:
        allowed = [
            "https://nuage.encommun.example",
            "https://slash.encommun.example",
            "https://outils.example",
            "http://127.0.0.1:8081",
            "https://a_b.example",
        ]
        refused = [
            "http://nuage.encommun.example",  # scheme differs
            "https://nuage.encommun.example:8443",  # port differs
            "https://nuage.encommun.example.evil.example",  # suffix trick
            "https://evil.example",
            "https://arret.encommun.example",  # suspended
            "http://127.0.0.1:8082",
            "https://aXb.example",  # "_" is not a wildcard
            "https://nuage.encommun.example/",  # not an origin
            "null",
            "",
        ]
        assert [o for o in allowed if not widget.allowed_origin(s, o)] == []
        assert [o for o in refused if widget.allowed_origin(s, o)] == []
