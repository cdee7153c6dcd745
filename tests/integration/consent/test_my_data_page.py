"""The "Mes données" page through HTTP: what each tool received, withdrawal, purposes, ledger, access log."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portail.accounts.mfa.models import Passkey
from portail.accounts.models import Member
from portail.accounts.passwords import Passwords
from portail.config import Settings
from portail.oidc.models import Consent, ConsentEvent, Grant, OAuthClient, RefreshToken
from tests.conftest import PASSWORD, db_call, form_post, login
from tests.integration.consent.forms import submit
from tests.unit.consent.population import populate

PURPOSES = """
[[purposes]]
key = "recherche"
title_fr = "Statistiques anonymisées pour la recherche"
title_en = "Anonymized statistics for research"
description_fr = "Des partenaires de recherche reçoivent des statistiques sans votre nom."
description_en = "Research partners receive statistics without your name."
"""


def _populate(settings: Settings) -> None:
    hashed = Passwords(settings).hash(PASSWORD)
    db_call(settings, lambda s: populate(s, email="alice@example.org", name="Alice Tremblay", password_hash=hashed))
    # The population holds a sample passkey (a row in every table); these pages are reached with the password only.
    db_call(settings, lambda s: s.execute(delete(Passkey)))


def test_the_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/account/data")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_page_shows_what_each_tool_received_and_when(client: TestClient, settings: Settings) -> None:
    _populate(settings)
    login(client)
    page = client.get("/account/data")
    assert page.status_code == 200
    text = page.text
    assert "Nuage En commun" in text and "consentement actif" in text
    assert "Votre adresse courriel et si elle est vérifiée" in text  # the email scope in plain words
    assert "identité, courriel" in text  # declared data categories
    assert "Vous connecter" in text  # declared purpose
    assert "version 2026-11" in text
    marker = "Dernière connexion de l’outil à votre nom"
    assert marker in text and "jamais" not in text.split(marker, 1)[1][:60]


def test_the_page_speaks_english_to_an_english_member(client: TestClient, settings: Settings) -> None:
    _populate(settings)
    db_call(settings, _english)
    login(client)
    text = client.get("/account/data").text
    assert "My data" in text and "Your email address and whether it is verified" in text
    # The tool declared its purposes in English too (purposes_en), its data categories in French only.
    assert "Log you in" in text and "Vous connecter" not in text
    assert '<span lang="fr">identité, courriel</span>' in text


def _english(session: Session) -> None:
    member = session.exec(select(Member).where(Member.email == "alice@example.org")).one()
    member.locale = "en"
    session.add(member)


def test_withdrawing_revokes_the_tools_tokens_and_writes_the_ledger(client: TestClient, settings: Settings) -> None:
    _populate(settings)
    login(client)
    response = submit(client, "/account/data", "/account/data/tools/nuage/withdraw", {})
    assert response.status_code == 303
    page = client.get("/account/data")
    assert "consentement retiré le" in page.text
    assert "Votre consentement à Nuage En commun est retiré : ses jetons sont révoqués" in page.text

    def check(session: Session) -> None:
        consent = session.exec(select(Consent)).one()
        assert consent.withdrawn_at is not None
        assert all(g.revoked_at is not None for g in session.exec(select(Grant)))
        assert all(t.revoked_at is not None for t in session.exec(select(RefreshToken)))
        last = session.exec(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()  # type: ignore[union-attr]
        assert last is not None and (last.action, last.client_id) == ("withdrawn", "nuage")

    db_call(settings, check)


def test_withdrawing_twice_or_from_a_tool_never_consented_to_is_refused_clearly(
    client: TestClient, settings: Settings
) -> None:
    _populate(settings)
    db_call(settings, lambda s: s.add(OAuthClient(client_id="autre", name="Autre outil", redirect_uris=[])))
    login(client)
    never = form_post(client, "/account/data", "/account/data/tools/autre/withdraw", {})
    assert never.status_code == 404 and "jamais donné votre consentement" in never.text
    unknown = form_post(client, "/account/data", "/account/data/tools/n-existe-pas/withdraw", {})
    assert unknown.status_code == 404
    assert submit(client, "/account/data", "/account/data/tools/nuage/withdraw", {}).status_code == 303
    again = form_post(client, "/account/data", "/account/data/tools/nuage/withdraw", {})  # no form any more
    assert again.status_code == 409 and "déjà retiré" in again.text


def test_a_withdrawal_without_the_form_token_is_refused(client: TestClient, settings: Settings) -> None:
    _populate(settings)
    login(client)
    response = client.post("/account/data/tools/nuage/withdraw", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert db_call(settings, lambda s: s.exec(select(Consent)).one().withdrawn_at) is None


def test_an_optional_purpose_is_off_until_turned_on_and_can_be_turned_off(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "no-instances.toml").write_text(PURPOSES, encoding="utf-8")
    _populate(settings)
    login(client)
    page = client.get("/account/data")
    assert "Statistiques anonymisées pour la recherche — désactivé" in page.text
    assert submit(client, "/account/data", "/account/data/purposes/recherche", {"granted": "on"}).status_code == 303
    assert "Statistiques anonymisées pour la recherche — activé" in client.get("/account/data").text
    assert submit(client, "/account/data", "/account/data/purposes/recherche", {"granted": "off"}).status_code == 303
    assert "recherche — désactivé" in client.get("/account/data").text
    missing = form_post(client, "/account/data", "/account/data/purposes/inconnue", {"granted": "on"})
    assert missing.status_code == 404
    ledger = client.get("/account/data/ledger").text
    assert ledger.count("usage facultatif « recherche »") == 2  # on, then off


def test_the_full_ledger_and_access_log_are_readable(client: TestClient, settings: Settings) -> None:
    _populate(settings)
    login(client)
    ledger = client.get("/account/data/ledger")
    assert ledger.status_code == 200 and "Consentement donné" in ledger.text and "Nuage En commun" in ledger.text
    assert client.get("/account/data/ledger?page=abc").status_code == 200
    access = client.get("/account/data/access")
    assert access.status_code == 200 and "jeton obtenu" in access.text and "renseignements consultés" in access.text
