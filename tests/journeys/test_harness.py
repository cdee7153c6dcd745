"""Journey: an operator starts Portail from an empty folder with an instances.toml; the printed
administrator logs in, and a newcomer signs up, confirms their address from the mail and reaches
their portal. Pins the deployment harness every other journey stands on."""

from __future__ import annotations

from tests.journeys.conftest import Deployment, sign_up

INSTANCES = """
[[hosters]]
slug = "projet-collectif"
name = "Projet collectif"
website = "https://projetcollectif.ca"
contact_email = "technique@projetcollectif.example"
charter_version = "2026-11"
"""


def test_operator_starts_portail_and_a_newcomer_reaches_the_portal(deployment: Deployment) -> None:
    deployment.write_instances(INSTANCES)
    deployment.start()
    assert deployment.admin_email and deployment.admin_password

    admin = deployment.admin()
    assert admin.get("/account").status_code == 200

    member = sign_up(deployment, "nouvelle@example.org", name="Nouvelle Membre")
    member.login("nouvelle@example.org")
    home = member.get("/")
    assert home.status_code == 200
    assert "Nouvelle Membre" in home.text
