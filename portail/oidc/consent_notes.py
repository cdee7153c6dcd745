"""Notes a higher package adds to the consent page about the tool asking (e.g. the federation says
where the tool stores the member's data, Law 25). The provider knows nothing of what they say: a
note provider takes the database session, the client and the page's language and returns sentences
already translated. Registered at startup (``federation/startup.py``)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from portail.oidc.models import OAuthClient

NoteProvider = Callable[[Session, OAuthClient, str], list[str]]
_providers: list[NoteProvider] = []


def register(provider: NoteProvider) -> None:
    """Add a provider (registering the same function again replaces it)."""
    name = (provider.__module__, provider.__qualname__)
    _providers[:] = [p for p in _providers if (p.__module__, p.__qualname__) != name]
    _providers.append(provider)


def notes_for(db: Session, client: OAuthClient, locale: str) -> list[str]:
    return [note for provider in list(_providers) for note in provider(db, client, locale)]
