"""Journey: the administrator printed at first start is told to add two-step verification and is sent
to enrol it before any administration page; a member enrols an authenticator app, loses their
phone, and the operator lists then resets their factors from the command line (the member is told
by mail and logs in with their password again)."""

from __future__ import annotations

import json

from tests.journeys.conftest import Deployment, mail_text, sign_up


def test_admin_enrols_before_administering_and_the_operator_resets_a_lost_factor(deployment: Deployment) -> None:
    deployment.start()
    assert "/account/security" in deployment.server_log.read_text(encoding="utf-8")

    first = deployment.visitor()
    first.login(deployment.admin_email, deployment.admin_password)
    gate = first.get("/admin/oidc/clients")
    assert gate.status_code == 303 and gate.headers["location"].startswith("/account/security?next=")
    admin = deployment.admin()  # enrols an authenticator app through the security page
    assert admin.get("/admin/oidc/clients").status_code == 200
    again = deployment.admin()  # the second step, answered with a recovery code
    assert again.get("/admin/oidc/clients").status_code == 200

    member = sign_up(deployment, "remi@example.org", name="Rémi Bouchard")
    member.login("remi@example.org")
    secret, codes = member.enrol_authenticator_app()
    assert len(codes) == 10

    listed = json.loads(deployment.cli("users", "mfa", "list", "remi@example.org", "--json").stdout)
    assert [row["type"] for row in listed] == ["totp", "recovery-codes"]
    assert listed[1]["remaining"] == 10
    assert secret not in json.dumps(listed) and not any(code in json.dumps(listed) for code in codes)

    missing = deployment.cli("users", "mfa", "reset", "remi@example.org", check=False)
    assert missing.returncode != 0 and "--reason" in missing.stderr
    done = deployment.cli("users", "mfa", "reset", "remi@example.org", "--reason", "téléphone perdu (billet 42)")
    assert "factors removed: 1" in done.stdout
    told = deployment.wait_for_mail("remi@example.org", count=3)[-1]
    assert told["Subject"] == "Les méthodes de connexion de votre compte ont été réinitialisées"
    assert "/account#sessions-h" in mail_text(told)
    assert json.loads(deployment.cli("users", "mfa", "list", "remi@example.org", "--json").stdout) == []

    unknown = deployment.cli("users", "mfa", "list", "personne@example.org", check=False)
    assert unknown.returncode == 1 and "no such member" in unknown.stderr

    phone_lost = deployment.visitor()
    assert phone_lost.login("remi@example.org").headers["location"] == "/"  # no second step any more
