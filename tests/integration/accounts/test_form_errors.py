"""Account forms report every error at its field (issue 12): the password form names each refused field,
keeps what can be kept, and the account page shows a pending address change."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from portail.config import Settings
from tests.conftest import BASE_URL, create_member, form_post, link_in, login, outbox


def test_a_refused_password_change_names_each_field_at_once(client: TestClient, settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    login(client, "alice@example.org")
    data = {"current_password": "pas le bon", "new_password": "court", "new_password_confirm": "autre"}
    response = form_post(client, "/account", "/account/password", data)
    assert response.status_code == 400
    for name in ("current_password", "new_password", "new_password_confirm"):
        assert re.search(rf'id="f-{name}"[^>]*aria-describedby="e-{name}"[^>]*aria-invalid="true"', response.text), name
        assert f'href="#f-{name}"' in response.text
    assert "Corrigez ces 3 champs" in response.text
    assert 'id="f-current_password"' in response.text.split("autofocus")[0].rsplit("<input", 1)[1]


def test_a_refused_name_is_shown_at_its_field_with_what_was_typed(client: TestClient, settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    login(client, "alice@example.org")
    response = form_post(client, "/account", "/account/profile", {"name": "n" * 201, "locale": "fr-CA"})
    assert response.status_code == 400
    assert 'id="e-name"' in response.text and 'value="' + "n" * 201 + '"' in response.text


def test_the_account_page_shows_a_pending_address_change(client: TestClient, settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    login(client, "alice@example.org")
    assert "Changement demandé" not in client.get("/account").text
    asked = form_post(client, "/account", "/account/email", {"email": "alice.new@example.org"})
    assert asked.status_code == 303
    page = client.get("/account").text
    assert "Changement demandé vers alice.new@example.org" in page
    refused = form_post(client, "/account", "/account/email", {"email": "nope"})
    assert refused.status_code == 400 and 'id="e-email"' in refused.text and 'value="nope"' in refused.text


def test_a_refused_new_password_on_the_reset_page_names_both_fields(client: TestClient, settings: Settings) -> None:
    create_member(settings, "alice@example.org", "Alice")
    assert form_post(client, "/password/forgot", "/password/forgot", {"email": "alice@example.org"}).status_code < 400
    link = link_in(outbox(settings)[-1]).removeprefix(BASE_URL)
    response = form_post(client, link, link, {"password": "court", "password_confirm": "autre"})
    assert response.status_code == 400
    assert "Corrigez ces 2 champs" in response.text
    assert 'id="e-password"' in response.text and 'id="e-password_confirm"' in response.text
