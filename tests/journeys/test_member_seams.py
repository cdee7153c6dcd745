"""Journeys at the seams between member pages ("Works as deployed"): an unverified member is never
sent in a loop; a material privacy-policy change is accepted before any other page or tool opens;
Portail's own acceptances are in the consent ledger; deleting an account says clearly what happened;
no stranger can make Portail mail an address (or mail from one connection) without limit.

Everything is set up as a deployment does: environment settings and restarts, the ``portail``
command line, the HTML forms."""

from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from tests.conftest import PASSWORD
from tests.journeys.conftest import CSRF_RE, Deployment, Visitor, links_in, mail_text, sign_up

REDIRECT_URI = "http://127.0.0.1:9/callback"
# Every page that needs a logged-in member (the guards of accounts/current.py and the packages'
# own): none may loop or bounce an unverified member.
MEMBER_PAGES = [
    "/notifications",
    "/account",
    "/",
    "/notifications/preferences",
    "/organizations",
    "/account/territory",
    "/account/api-tokens",
    "/federation/hosters/apply",
]


def _csrf(page: httpx.Response) -> str:
    tokens = CSRF_RE.findall(page.text)
    assert tokens, page.text[:500]
    return unescape(tokens[0])


def _tool(deployment: Deployment) -> str:
    """An operator registers a tool (trusted: no consent page) and returns its client id."""
    done = deployment.cli("clients", "create", "--name", "Outil", "--redirect-uri", REDIRECT_URI, "--trusted", "--json")
    return str(json.loads(done.stdout)["client_id"])


def _authorize(client_id: str, **extra: str) -> str:
    params = {"client_id": client_id, "response_type": "code", "scope": "openid", "redirect_uri": REDIRECT_URI}
    return "/authorize?" + urlencode({**params, "state": "s1", **extra})


def _review_redirect(visitor: Visitor, path: str) -> None:
    response = visitor.get(path)
    assert response.status_code == 303, (path, response.status_code)
    assert response.headers["location"] == f"/privacy/review?next={quote(path, safe='')}", path


# ---------------------------------------------------------------- 1. unverified members


def test_an_unverified_member_gets_a_clear_page_everywhere_and_corrects_a_mistyped_address(
    deployment: Deployment,
) -> None:
    """Journey: a newcomer mistypes their address at sign-up, logs in, opens every member page (each
    shows "confirmez votre adresse", none loops or bounces), corrects the address on that page,
    confirms it from the new mail (the link mailed to the mistyped address no longer works) and
    reaches their notifications."""
    deployment.start()
    visitor = deployment.visitor()
    typo, right = "camille@exmaple.org", "camille@example.org"
    fields = {"email": typo, "name": "Camille", "password": "un mot de passe solide", "accept_terms": "on"}
    signed = visitor.submit("/signup", data={**fields, "password_confirm": fields["password"], "accept_privacy": "on"})
    assert signed.status_code == 200
    [first_mail] = deployment.wait_for_mail(typo)
    visitor.login(typo, "un mot de passe solide", next_url="/notifications")

    for path in MEMBER_PAGES:
        page = visitor.follow(visitor.get(path))  # fails on more than 10 redirects (a loop)
        assert page.status_code in (200, 403), (path, page.status_code)
        assert str(page.url).endswith(path), (path, page.url)  # no silent bounce elsewhere
        assert "Confirmez votre adresse courriel" in page.text, path
        assert typo in page.text and 'action="/verify/resend"' in page.text and 'action="/verify/address"' in page.text

    page = visitor.get("/account")
    corrected = visitor.http.post(
        "/verify/address", data={"csrf_token": _csrf(page), "email": right, "next": "/account"}
    )
    assert corrected.status_code == 303 and corrected.headers["location"] == "/account"
    [mail] = deployment.wait_for_mail(right)
    old_link = next(link for link in links_in(first_mail) if "verif" in link)
    assert visitor.get(old_link.replace(deployment.base_url, "")).status_code == 400
    link = next(link for link in links_in(mail) if "verif" in link)
    assert visitor.follow(visitor.get(link.replace(deployment.base_url, ""))).status_code == 200

    inbox = visitor.get("/notifications")
    assert inbox.status_code == 200 and "Confirmez votre adresse" not in inbox.text
    assert visitor.get("/account").status_code == 200
    assert right in visitor.get("/account").text


# ---------------------------------------------------------------- 2. policy changes


def test_a_material_policy_change_is_accepted_before_any_page_or_tool_opens(deployment: Deployment) -> None:
    """Journey: the operator changes ``privacy_policy_version`` and restarts; a logged-in member
    opening ``/``, ``/account``, ``/notifications`` or a tool's ``/authorize`` is sent to the review
    every time (a silent ``prompt=none`` gets ``interaction_required``, never a code) while the
    policy, "Mes données" and logging out stay open; after accepting, the tool gets its code and
    every page opens. The operator then publishes a material version with the command line: the
    same again, with its summary."""
    deployment.start()
    client_id = _tool(deployment)
    member = sign_up(deployment, "dominique@example.org", name="Dominique")
    member.login("dominique@example.org")
    authorize = _authorize(client_id)
    assert member.get("/").status_code == 200
    assert urlsplit(member.get(authorize).headers["location"]).netloc == "127.0.0.1:9"

    deployment.env["PORTAIL_PRIVACY_POLICY_VERSION"] = "2027-01"
    deployment.restart()
    pages = ["/", "/account", "/notifications", "/organizations", authorize]
    for _round in range(2):
        for path in pages[:-1]:
            _review_redirect(member, path)
        to_review = member.get(authorize)
        assert to_review.status_code == 303
        assert to_review.headers["location"].startswith("/privacy/review?next=%2Fauthorize%2Fresume%2F")
    silent = member.get(_authorize(client_id, prompt="none"))
    query = parse_qs(urlsplit(silent.headers["location"]).query)
    assert query["error"] == ["interaction_required"] and "code" not in query
    for open_page in ("/privacy", "/privacy/history", "/account/data", "/logout", "/terms"):
        assert member.get(open_page).status_code == 200, open_page
    review = member.get("/privacy/review?next=%2F")
    assert "La version 2027-01 de la politique de confidentialité remplace la version 2026-11" in review.text

    parked = member.get(authorize).headers["location"]
    resume = parse_qs(urlsplit(parked).query)["next"][0]
    accepted = member.submit(parked, "/privacy/review", data={"accept": "yes", "next": resume})
    assert accepted.status_code == 303 and accepted.headers["location"] == resume
    code = member.get(resume)
    assert code.status_code == 302 and "code" in parse_qs(urlsplit(code.headers["location"]).query)
    for path in pages[:-1]:
        assert member.get(path).status_code == 200, path

    deployment.cli(
        "privacy", "publish", "2027-02", "--material",
        "--summary-fr", "Un nouvel outil reçoit votre nom.", "--summary-en", "A new tool receives your name.",
    )  # fmt: skip
    _review_redirect(member, "/account")
    assert "Un nouvel outil reçoit votre nom." in member.get("/privacy/review?next=%2Faccount").text
    member.submit("/privacy/review?next=%2Faccount", "/privacy/review", data={"accept": "yes", "next": "/account"})
    assert member.get("/account").status_code == 200


# ---------------------------------------------------------------- 3. the ledger


def _acceptance_lines(html: str) -> list[str]:
    return sorted(
        re.sub(r"\s+", " ", unescape(m)).strip() for m in re.findall(r"<li>([^<]*acceptée?s? :[^<]*)</li>", html)
    )


def test_portails_own_acceptances_are_in_the_ledger_and_both_pages_agree(deployment: Deployment) -> None:
    """Journey: a newcomer signs up; their consent ledger shows the acceptance of Portail's terms and
    privacy policy with versions; "Mes données" and the policy history say the same. The operator
    publishes a material version; the member accepts it; the ledger shows the renewal and both
    pages show the new version."""
    deployment.start()
    member = sign_up(deployment, "eli@example.org", name="Éli")
    member.login("eli@example.org")
    ledger = member.get("/account/data/ledger").text
    assert "Aucun événement" not in ledger
    assert "Conditions d’utilisation de Portail" in ledger and "Politique de confidentialité de Portail" in ledger
    assert ledger.count("<td>2026-11</td>") == 2
    data, history = member.get("/account/data").text, member.get("/privacy/history").text
    lines = _acceptance_lines(data)
    assert any("Politique de confidentialité acceptée : version 2026-11" in line for line in lines)
    assert any("Conditions d’utilisation acceptées : version 2026-11" in line for line in lines)
    assert _acceptance_lines(history) == lines and "Version en vigueur : 2026-11." in history

    deployment.cli(
        "privacy", "publish", "2027-01", "--material", "--summary-fr", "Changements.", "--summary-en", "Changes.",
    )  # fmt: skip
    member.submit("/privacy/review?next=%2F", "/privacy/review", data={"accept": "yes", "next": "/"})
    ledger = member.get("/account/data/ledger").text
    assert "Consentement renouvelé" in ledger and "<td>2027-01</td>" in ledger
    data, history = member.get("/account/data").text, member.get("/privacy/history").text
    assert any("Politique de confidentialité acceptée : version 2027-01" in line for line in _acceptance_lines(data))
    assert _acceptance_lines(history) == _acceptance_lines(data)


# ---------------------------------------------------------------- 4. deletion


def test_deleting_an_account_says_what_happened_where_the_member_looks(deployment: Deployment) -> None:
    """Journey: a member asks to delete their account with a wrong password (the error is at the
    password field, announced and focused), then with the right one (the confirmation page is
    logged out: no member menu), then changes their mind and logs in (the page says the deletion
    is cancelled)."""
    deployment.start()
    member = sign_up(deployment, "frederique@example.org", name="Frédérique")
    member.login("frederique@example.org")

    wrong = member.submit("/account/data", "/account/data/delete", data={"password": "pas le bon mot de passe"})
    assert wrong.status_code == 400
    field = re.search(r'<input id="f-delete-password"[^>]*>', wrong.text)
    assert field and 'aria-invalid="true"' in field.group(0) and "autofocus" in field.group(0)
    assert 'aria-describedby="e-delete-password"' in field.group(0)
    assert re.search(r'id="e-delete-password"[^>]*>Mot de passe incorrect', wrong.text)

    done = member.submit("/account/data", "/account/data/delete", data={"password": PASSWORD})
    assert done.status_code == 200 and "Vous êtes maintenant déconnecté" in done.text
    header = done.text.split("</header>")[0]
    assert "Se déconnecter" not in header and "Mes données" not in header and "Se connecter" in header

    back = member.follow(member.login("frederique@example.org"))
    assert back.status_code == 200
    assert "la suppression de votre compte est annulée" in back.text
    assert "Garder mon compte" not in member.get("/account/data").text


# ---------------------------------------------------------------- 5. mail limits


def _fresh(deployment: Deployment) -> Visitor:
    """A new browser (a new connection: with several workers, requests reach different processes)."""
    return deployment.visitor()


def _forgot(deployment: Deployment, address: str) -> httpx.Response:
    return _fresh(deployment).submit("/password/forgot", data={"email": address})


def _main_text(response: httpx.Response) -> str:
    return response.text.split('id="main"')[-1].split("</main>")[0]


def test_a_stranger_cannot_make_portail_mail_without_limit(deployment: Deployment) -> None:
    """Journey: on two worker processes, a stranger asks twelve password resets for one member's
    address: at most ``mail_limit_per_address`` mails go out and every page says the same as for an
    unknown address; twelve re-sent verifications reach the address at most that many times too;
    then, from the same connection, requests for ever new addresses are refused (429, "try again
    in N minutes") once ``mail_limit_per_ip`` is reached."""
    deployment.env.update({"PORTAIL_MAIL_LIMIT_PER_ADDRESS": "3", "PORTAIL_MAIL_LIMIT_PER_IP": "30"})
    deployment.start(workers=2)
    deployment.cli("users", "create", "gabrielle@example.org", "--name", "Gabrielle", "--password-stdin",
                   input=PASSWORD + "\n")  # fmt: skip
    unknown = _main_text(_forgot(deployment, "personne@example.org"))
    pages = [_forgot(deployment, "gabrielle@example.org") for _ in range(12)]
    assert all(p.status_code == 200 for p in pages)
    assert {_main_text(p).replace("gabrielle@example.org", "personne@example.org") for p in pages} == {unknown}
    mails = deployment.wait_for_mail("gabrielle@example.org", count=3)
    assert len(mails) == 3 and all("password/reset" in mail_text(m) for m in mails)

    newcomer = deployment.visitor()
    fields = {"email": "hugo@example.org", "name": "Hugo", "password": "un mot de passe solide"}
    newcomer.submit("/signup", data={**fields, "password_confirm": fields["password"], "accept_terms": "on",
                                     "accept_privacy": "on"})  # fmt: skip
    newcomer.login("hugo@example.org", "un mot de passe solide")
    for _ in range(12):
        page = newcomer.get("/")
        newcomer.http.post("/verify/resend", data={"csrf_token": _csrf(page), "next": "/"})
    assert len(deployment.wait_for_mail("hugo@example.org", count=3)) == 3

    # 1 + 12 + 1 + 12 requests so far from 127.0.0.1: four more addresses, then 429.
    allowed = [_forgot(deployment, f"inconnu{n}@example.org") for n in range(4)]
    assert all(p.status_code == 200 for p in allowed)
    refused = _forgot(deployment, "encore@example.org")
    assert refused.status_code == 429 and "Réessayez dans" in refused.text and int(refused.headers["Retry-After"]) > 0
    assert len(deployment.mails_to("gabrielle@example.org")) == 3 and len(deployment.mails_to("hugo@example.org")) == 3
