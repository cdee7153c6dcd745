"""What the federation adds to the running application (called from ``portail/app.py``):

- ``register_hooks()``: the ``groups`` claim provider of the OpenID Connect provider
  (``portail.oidc.claims.register_groups_provider``) — an instance receives only the member's
  organizations relevant to it (``audience.groups_for``);
- ``prober(settings, db)``: the background health prober, started and stopped by the lifespan.
"""

from __future__ import annotations

import logging

from portail.config import Settings
from portail.db import Database
from portail.federation import audience, credentials
from portail.federation.probes import Prober
from portail.oidc import claims

log = logging.getLogger("portail.federation")


def register_hooks() -> None:
    """The ``groups`` claim provider and the federation's API scopes (for ``client_credentials``)."""
    claims.register_groups_provider(audience.groups_for)
    for name, description in credentials.SCOPES.items():
        claims.register_scope(name, description)


def prober(settings: Settings, db: Database) -> Prober:
    return Prober(settings, db)
