"""Mail limits (``portail.accounts.mail_limits``): per target address and per client address, on the
database (SQLite, PostgreSQL) and on Redis, shared by separate limiter instances (worker processes),
and through the pages that mail an address someone does not prove to own."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from portail.accounts.mail_limits import MailLimiter, Verdict
from portail.accounts.models import LoginThrottle, Member
from portail.config import Settings
from portail.db import Database
from tests import seed
from tests.conftest import create_member, db_call, form_post, login, outbox


def _verdicts(settings: Settings, calls: list[tuple[str, str]], *, clock: float = 7200.0) -> list[Verdict]:
    """Each call through a NEW limiter (as if each request reached another worker process)."""

    async def run() -> list[Verdict]:
        db = Database(settings)
        results = []
        try:
            for address, ip in calls:
                limiter = MailLimiter(settings, db)
                limiter.clock = lambda: clock
                results.append(await limiter.check(address, ip))
                await limiter.aclose()
        finally:
            db.dispose()
        return results

    return asyncio.run(run())


def _limits(settings: Settings, **changes: object) -> Settings:
    return settings.replace(mail_limit_per_address=3, mail_limit_per_ip=5, mail_limit_window_minutes=60, **changes)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_limits_count_per_address_and_per_ip_across_limiters(
    settings: Settings, store: str, request: pytest.FixtureRequest
) -> None:
    limited = _limits(settings, redis_url=request.getfixturevalue("redis_url") if store == "redis" else None)
    # One address, spelled differently, from several client addresses: the fourth is silent.
    spellings = ["a@example.org", "A@EXAMPLE.ORG", " a@Example.org", "a@example.org"]
    verdicts = _verdicts(limited, [(s, f"10.0.0.{n}") for n, s in enumerate(spellings)])
    assert [v.send for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].address_limited and not verdicts[-1].retry_after
    # One client address, new addresses each time: the sixth is refused with the seconds to wait.
    verdicts = _verdicts(limited, [(f"n{n}@example.org", "10.9.9.9") for n in range(6)])
    assert [v.send for v in verdicts] == [True] * 5 + [False]
    assert verdicts[-1].retry_after == 3600 + 1 and verdicts[-1].retry_minutes == 61
    # The next window starts from zero.
    assert _verdicts(limited, [("a@example.org", "10.9.9.9")], clock=7200.0 + 3600)[0].send


def test_a_limit_of_zero_is_off(settings: Settings) -> None:
    off = settings.replace(mail_limit_per_address=0, mail_limit_per_ip=0)
    assert all(v.send for v in _verdicts(off, [("a@example.org", "10.0.0.1")] * 10))
    assert db_call(settings, lambda s: s.exec(select(LoginThrottle)).all()) == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The pages of this module run under small limits: three mails per address, five per connection."""
    return _limits(settings)


def test_sign_up_with_a_taken_address_is_limited_like_a_new_one(
    client: TestClient, settings: Settings, member: object
) -> None:
    fields = {
        "name": "Quelqu’un",
        "email": "alice@example.org",
        "password": "un mot de passe solide",
        "accept_terms": "on",
        "accept_privacy": "on",
    }
    pages = [
        form_post(client, "/signup", "/signup", {**fields, "password_confirm": fields["password"]}) for _ in range(4)
    ]
    assert [p.status_code for p in pages] == [200] * 4
    assert len({p.text.split('id="main"')[-1].split("</main>")[0] for p in pages}) == 1
    assert len(outbox(settings)) == 3  # "someone tried to sign up with your address", three times only


def test_the_forgot_page_refuses_a_connection_over_its_limit(client: TestClient, settings: Settings) -> None:
    answers = [
        form_post(client, "/password/forgot", "/password/forgot", {"email": f"n{n}@example.org"}) for n in range(6)
    ]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert "Trop de demandes d’envoi de courriel depuis votre connexion" in refused.text
    assert int(refused.headers["Retry-After"]) > 0


def test_changing_a_verified_address_counts_toward_the_limits(
    client: TestClient, settings: Settings, member: object
) -> None:
    login(client)
    for _ in range(4):
        answer = form_post(client, "/account", "/account/email", {"email": "nouvelle@example.org"})
        assert answer.status_code == 303
    assert len([m for m in outbox(settings) if "nouvelle@example.org" in str(m["To"])]) == 3


@pytest.fixture
def centre(settings: Settings, member: Member) -> None:
    """Alice (``member``) administers Centre Solidaire."""
    db = Database(settings)
    with db.session() as s:
        seed.membership(s, seed.organization(s, "centre", "Centre Solidaire").id, member.id, role="admin")
    db.dispose()


def test_invitations_count_toward_the_limits_of_the_invited_address(
    client: TestClient, settings: Settings, centre: None
) -> None:
    login(client)
    answers = [
        form_post(
            client,
            "/organizations/centre",
            "/organizations/centre/invite",
            {"email": "x@example.org", "role": "member"},
        )
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [303, 303, 303, 400]
    assert "Plusieurs courriels ont déjà été envoyés à cette adresse" in answers[-1].text
    assert len([m for m in outbox(settings) if "x@example.org" in str(m["To"])]) == 3


def test_asking_to_join_again_and_again_does_not_flood_the_administrators(
    client: TestClient, settings: Settings, centre: None
) -> None:
    create_member(settings, "bob@example.org", "Bob")
    login(client, "bob@example.org")
    for _ in range(3):
        assert form_post(client, "/organizations/centre", "/organizations/centre/join", {}).status_code == 303
        assert form_post(client, "/organizations/centre", "/organizations/centre/leave", {}).status_code == 303
    refused = form_post(client, "/organizations/centre", "/organizations/centre/join", {})
    assert refused.status_code == 400 and "Votre demande a déjà été envoyée plusieurs fois" in refused.text
    assert len([m for m in outbox(settings) if "alice@example.org" in str(m["To"])]) == 3
