"""What the federation adds to the running application (called from ``portail/app.py``):

- ``register_hooks(extensions, backchannel_setup)``: the members-only access rule at ``/authorize``
  (``audience.members_only_refusal``), the ``groups`` claim provider of the OpenID Connect provider
  (``AccountExtensions.set_groups_provider``) — an instance receives only the member's
  organizations relevant to it (``audience.groups_for``), and which OIDC clients were provisioned
  for a hoster's node (``provisioning.hoster_clients``: back-channel logout reaches them guarded);
- where a node keeps its members' data, said on the consent page (``residency.consent_notes``);
- ``register_tasks(runner, settings, db)``: the background health prober (``probes.py``).
"""

from __future__ import annotations

import logging

from portail.accounts.extensions import AccountExtensions
from portail.background import Runner
from portail.config import Settings
from portail.db import Database
from portail.federation import audience, credentials, probes, provisioning, residency
from portail.oidc import backchannel, claims, consent_notes, prompts

log = logging.getLogger("portail.federation")


def register_hooks(extensions: AccountExtensions, backchannel_setup: backchannel.Setup) -> None:
    """The ``groups`` claim provider (on the application's ``extensions``), the members-only rule, the
    guard on hosters' clients and the federation's API scopes (for ``client_credentials``)."""
    extensions.set_groups_provider(audience.groups_for)
    prompts.register_access_rule(audience.members_only_refusal)
    backchannel_setup.guard_clients_found_by(provisioning.hoster_clients)
    consent_notes.register(residency.consent_notes)  # where the tool keeps the member's data (Law 25)
    for name, description in credentials.SCOPES.items():
        claims.register_scope(name, description)


def register_tasks(runner: Runner, settings: Settings, db: Database) -> None:
    probes.register_tasks(runner, settings, db)
