"""``portail clients initial-token``: the token is printed once, stored hashed, and registers a client."""

from __future__ import annotations

import argparse
import json

import pytest
from starlette.testclient import TestClient

from portail.config import Settings
from portail.oidc import registration_commands

METADATA = {"client_name": "Forum", "redirect_uris": ["https://forum.example.org/auth/oidc/callback"]}


def _run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    clients = parser.add_subparsers(dest="command").add_parser("clients").add_subparsers(dest="clients_command")
    registration_commands.add_parsers(clients)
    args = parser.parse_args(["clients", "initial-token", *argv])
    return int(args.handler(args, settings))


def test_initial_token_prints_a_token_that_registers_a_client(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(settings, "--uses", "1", "--expires", "2d", "--note", "Forum du quartier", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["uses"] == 1 and printed["expires_at"]
    headers = {"Authorization": f"Bearer {printed['initial_access_token']}"}
    assert client.post("/register", json=METADATA, headers=headers).status_code == 201
    assert client.post("/register", json=METADATA, headers=headers).status_code == 401


def test_initial_token_refuses_a_bad_duration_or_use_count(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(settings, "--expires", "soon") == 2
    assert _run(settings, "--uses", "0") == 2
    err = capsys.readouterr().err
    assert "invalid duration" in err and "--uses" in err
