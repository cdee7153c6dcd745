"""Notes a higher package adds to the consent page about the tool asking (e.g. the federation says
where the tool stores the member's data, Law 25). The provider knows nothing of what they say: a
note provider takes the database session, the client and the page's language and returns sentences
already translated. Added to the application's ``ProviderExtensions`` at startup
(``federation/startup.py``)."""

from __future__ import annotations

from sqlmodel import Session

from portail.oidc import extensions
from portail.oidc.models import OAuthClient


def notes_for(db: Session, client: OAuthClient, locale: str) -> list[str]:
    providers = list(extensions.of(db).note_providers)
    return [note for provider in providers for note in provider(db, client, locale)]
