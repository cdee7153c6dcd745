"""What the federation adds to the running application (called from ``portail/app.py``):

- ``register_hooks(extensions, provider, backchannel_setup)``: the members-only access rule at ``/authorize``
  (``audience.members_only_refusal``), the ``groups`` claim provider of the OpenID Connect provider
  (``AccountExtensions.set_groups_provider``) — an instance receives only the member's
  organizations relevant to it (``audience.groups_for``), and which OIDC clients were provisioned
  for a hoster's node (``provisioning.hoster_clients``: back-channel logout reaches them guarded);
  hoster administrators administer others (``rules.administers_a_hoster``: they need a second factor);
- where a node keeps its members' data, said on the consent page (``residency.consent_notes``);
- ``register_tasks(runner, settings, db)``: the background health prober (``probes.py``).
"""

from __future__ import annotations

import logging

from portail.accounts.extensions import AccountExtensions
from portail.background import Runner
from portail.config import Settings
from portail.db import Database
from portail.federation import audience, credentials, probes, provisioning, residency, rules
from portail.oidc import backchannel
from portail.oidc.extensions import ProviderExtensions

log = logging.getLogger("portail.federation")


def register_hooks(
    extensions: AccountExtensions, provider: ProviderExtensions, backchannel_setup: backchannel.Setup
) -> None:
    """On the application's objects: the ``groups`` claim provider (``extensions``), the members-only
    rule, the consent notes and the federation's API scopes for ``client_credentials`` (``provider``),
    the guard on hosters' clients (``backchannel_setup``)."""
    extensions.set_groups_provider(audience.groups_for)
    extensions.add_administering_role(rules.administers_a_hoster)  # hoster admins need a second factor
    provider.add_access_rule(audience.members_only_refusal)
    backchannel_setup.guard_clients_found_by(provisioning.hoster_clients)
    provider.add_note_provider(residency.consent_notes)  # where the tool keeps the member's data (Law 25)
    for name, description in credentials.SCOPES.items():
        provider.register_scope(name, description)


def register_tasks(runner: Runner, settings: Settings, db: Database) -> None:
    probes.register_tasks(runner, settings, db)
