"""What packages above the OpenID Connect provider plug into it, held by one object per application.

``create_app`` makes one ``ProviderExtensions``, lets the higher packages register on it (the
federation: its API scopes, the members-only access rule, where a tool keeps the member's data on
the consent page; the notification hub: the push scope), keeps it on ``app.state.oidc`` and attaches
it to the application's ``Database``: every unit of work carries it in ``Session.info``, so domain
code finds it with ``extensions.of(db)`` (as ``accounts.extensions``) and routes without a session
read ``request.app.state.oidc``. Two applications in one process never see each other's.

A session of a database nothing was attached to (a unit test's own ``Database``, a command) sees an
empty set: no API scope, no access rule, no consent note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from portail.accounts.models import Member
from portail.db import Database
from portail.oidc.models import OAuthClient

_KEY = "portail.oidc.extensions"

# rule(db, member, client) -> None when the member may use the client, else a French source message
AccessRule = Callable[[Session, Member, OAuthClient], "str | None"]
# provider(db, client, locale) -> sentences for the consent page, already translated
NoteProvider = Callable[[Session, OAuthClient, str], "list[str]"]


def _same(a: Callable[..., object], b: Callable[..., object]) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


@dataclass
class ProviderExtensions:
    """The API scopes, access rules and consent notes of one application; see the module docstring."""

    api_scopes: dict[str, str] = field(default_factory=dict)
    access_rules: list[AccessRule] = field(default_factory=list)
    note_providers: list[NoteProvider] = field(default_factory=list)

    def register_scope(self, name: str, description: str) -> None:
        """Declare an API scope (no claims), e.g. ``notifications:push``; ``description`` is the French
        text the consent page shows (with an English translation in the package's .po file)."""
        self.api_scopes[name] = description

    def add_access_rule(self, rule: AccessRule) -> None:
        """Add a rule run before a code is issued (``prompts.refusal``; the same function again replaces it)."""
        self.access_rules[:] = [r for r in self.access_rules if not _same(r, rule)]
        self.access_rules.append(rule)

    def add_note_provider(self, provider: NoteProvider) -> None:
        """Add a provider of consent-page notes (``consent_notes``; the same function again replaces it)."""
        self.note_providers[:] = [p for p in self.note_providers if not _same(p, provider)]
        self.note_providers.append(provider)

    def attach(self, database: Database) -> ProviderExtensions:
        """Make every unit of work of ``database`` carry these extensions."""
        database.session_info[_KEY] = self
        return self


def of(db: Session) -> ProviderExtensions:
    """The extensions of the application whose unit of work ``db`` is (a new empty set if none)."""
    found = db.info.get(_KEY)
    return found if isinstance(found, ProviderExtensions) else ProviderExtensions()
