"""What the federation adds to the running application (called from ``portail/app.py``):

- ``register_hooks(extensions)``: the members-only access rule at ``/authorize``
  (``audience.members_only_refusal``), the ``groups`` claim provider of the OpenID Connect provider
  (``AccountExtensions.set_groups_provider``) — an instance receives only the member's
  organizations relevant to it (``audience.groups_for``), and which OIDC clients were provisioned
  for a hoster's node (``provisioning.hoster_clients``: back-channel logout reaches them guarded);
- where a node keeps its members' data, said on the consent page (``residency.consent_notes``);
- ``prober(settings, db)``: the background health prober, started and stopped by the lifespan.
"""

from __future__ import annotations

import logging

from portail.accounts.extensions import AccountExtensions
from portail.config import Settings
from portail.db import Database
from portail.federation import audience, credentials, provisioning, residency
from portail.federation.probes import Prober
from portail.oidc import backchannel, claims, consent_notes, prompts

log = logging.getLogger("portail.federation")


def register_hooks(extensions: AccountExtensions) -> None:
    """The ``groups`` claim provider (on the application's ``extensions``), the members-only rule, the
    guard on hosters' clients and the federation's API scopes (for ``client_credentials``)."""
    extensions.set_groups_provider(audience.groups_for)
    prompts.register_access_rule(audience.members_only_refusal)
    backchannel.guard_clients_found_by(provisioning.hoster_clients)
    consent_notes.register(residency.consent_notes)  # where the tool keeps the member's data (Law 25)
    for name, description in credentials.SCOPES.items():
        claims.register_scope(name, description)


def prober(settings: Settings, db: Database) -> Prober:
    return Prober(settings, db)
