"""Every table of every package, gathered for Alembic and the tests (nothing else imports this)."""

from sqlmodel import SQLModel

from portail.accounts import models as accounts_models
from portail.accounts.mfa import models as mfa_models
from portail.consent import models as consent_models
from portail.dashboard import models as dashboard_models
from portail.federation import models as federation_models
from portail.notifications import models as notifications_models
from portail.oidc import models as oidc_models

__all__ = [
    "accounts_models",
    "consent_models",
    "dashboard_models",
    "federation_models",
    "metadata",
    "mfa_models",
    "notifications_models",
    "oidc_models",
]

metadata = SQLModel.metadata
