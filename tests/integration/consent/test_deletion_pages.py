"""Deletion through HTTP: password required, logged out, one request at a time, logging in cancels it."""

from __future__ import annotations

from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.config import Settings
from portail.consent.models import DeletionRequest
from tests.conftest import PASSWORD, db_call, login
from tests.integration.consent.forms import submit


def _requests(settings: Settings) -> list[DeletionRequest]:
    return db_call(settings, lambda s: list(s.exec(select(DeletionRequest))))  # type: ignore[no-any-return]


def test_a_wrong_password_does_not_request_the_deletion(client: TestClient, settings: Settings, member: object) -> None:
    login(client)
    response = submit(client, "/account/data", "/account/data/delete", {"password": "pas le bon"})
    assert response.status_code == 400
    # The error is at the field (the form is at the bottom of the page), not in a banner at the top.
    assert 'aria-invalid="true" aria-describedby="e-delete-password" autofocus' in response.text
    assert 'id="e-delete-password" role="alert">Mot de passe incorrect' in response.text
    assert _requests(settings) == []


def test_a_deletion_request_logs_out_and_a_login_cancels_it(
    client: TestClient, settings: Settings, member: object
) -> None:
    login(client)
    response = submit(client, "/account/data", "/account/data/delete", {"password": PASSWORD})
    assert response.status_code == 200 and "Votre compte sera supprimé le" in response.text
    assert client.get("/account/data").status_code == 303  # logged out
    [row] = _requests(settings)
    assert row.status == "pending"
    login(client)
    [row] = _requests(settings)
    assert (row.status, row.cancel_reason) == ("cancelled", "login")
    assert "Supprimer mon compte" in client.get("/account/data").text


def test_a_second_deletion_request_is_refused_with_its_dates(
    client: TestClient, settings: Settings, member: object
) -> None:
    login(client)
    page = client.get("/account/data")
    from tests.conftest import csrf_from

    token = csrf_from(page.text)
    first = client.post("/account/data/delete", data={"csrf_token": token, "password": PASSWORD})
    assert first.status_code == 200
    # The same browser submits the form again (double click, second tab): the session is gone.
    again = client.post("/account/data/delete", data={"csrf_token": token, "password": PASSWORD})
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    assert len(_requests(settings)) == 1


def test_the_member_can_keep_the_account_while_a_request_is_pending(
    client: TestClient, settings: Settings, member: object
) -> None:
    db_call(settings, _pending_request)
    login(client)  # logging in cancels it; make another pending request while logged in
    db_call(settings, _pending_request)
    page = client.get("/account/data")
    assert "Garder mon compte" in page.text
    assert submit(client, "/account/data", "/account/data/delete/cancel", {}).status_code == 303
    assert all(r.status == "cancelled" for r in _requests(settings))


def _pending_request(session: Session) -> None:
    from portail.accounts.members import get_by_email
    from portail.db import utcnow

    member = get_by_email(session, "alice@example.org")
    assert member is not None
    session.add(DeletionRequest(member_id=member.id, due_at=utcnow()))
