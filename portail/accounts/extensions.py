"""What packages above ``accounts`` plug into it, held by one object per application.

``create_app`` makes one ``AccountExtensions``, lets the higher packages register on it (the consent
package: the published policy versions, the ledger of acceptances, cancelling a deletion at login,
the policy review step; the OpenID Connect provider: what ends with a session, the username the
tools know a member by; the federation: the ``groups`` a client sees, who administers a hoster),
keeps it on ``app.state.extensions`` and attaches it to the application's ``Database``: every unit
of work of that database carries it in ``Session.info``, so a domain function that already takes
``db`` finds it with ``extensions.of(db)`` — no module-level registry, and two applications in one
process (tests, workers) never see each other's hooks.

A session of a database nothing was attached to (a unit test's own ``Database``) sees an empty set:
no hooks, no policy source, the default ``groups``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from sqlmodel import Session

from portail.db import Database

if TYPE_CHECKING:
    from portail.accounts.models import LoginSession, Member
    from portail.accounts.policy import PolicyChange

_KEY = "portail.accounts.extensions"

Document = Literal["terms", "privacy"]
SessionEndHook = Callable[[Session, "list[LoginSession]"], None]
LoginHook = Callable[[Session, "Member", "LoginSession"], "str | None"]
LoginStep = Callable[[Session, "Member"], "str | None"]
AcceptanceHook = Callable[[Session, int, Document, str, bool], None]
GroupsProvider = Callable[[Session, "Member", str], "list[str]"]
UsernameSource = Callable[[Session, "Member"], str]
AdministeringRole = Callable[[Session, "Member"], bool]


class PolicySource(Protocol):
    """What the package publishing policy versions provides (``portail.consent.policy``)."""

    def current_version(self, db: Session) -> str | None: ...

    def material_changes_since(self, db: Session, version: str) -> list[PolicyChange]: ...


@dataclass
class AccountExtensions:
    """The hooks of one application; see the module docstring."""

    session_end: list[SessionEndHook] = field(default_factory=list)
    login: list[LoginHook] = field(default_factory=list)
    login_steps: list[LoginStep] = field(default_factory=list)
    acceptance: list[AcceptanceHook] = field(default_factory=list)
    policy_source: PolicySource | None = None
    groups_provider: GroupsProvider | None = None
    username_source: UsernameSource | None = None
    administering_roles: list[AdministeringRole] = field(default_factory=list)

    def on_session_end(self, hook: SessionEndHook) -> None:
        """``hook(db, ended)`` runs, in the same transaction, with the sessions that just ended."""
        if hook not in self.session_end:
            self.session_end.append(hook)

    def on_login(self, hook: LoginHook) -> None:
        """``hook(db, member, session)`` runs, in the same transaction, each time a session opens; it
        returns a notice to show the member (a French message, translated by the login page) or ``None``."""
        self.login.append(hook)

    def on_login_step(self, step: LoginStep) -> None:
        """``step(db, member)`` returns a local page the member must visit right after logging in (e.g.
        a changed policy to review), or ``None`` when there is nothing to do."""
        self.login_steps.append(step)

    def on_acceptance(self, hook: AcceptanceHook) -> None:
        """``hook(db, member_id, document, version, renewed)`` runs in the transaction of each acceptance."""
        self.acceptance.append(hook)

    def set_policy_source(self, source: PolicySource | None) -> None:
        """Where the published privacy-policy versions come from (``None``: the setting only)."""
        self.policy_source = source

    def set_groups_provider(self, provider: GroupsProvider | None) -> None:
        """How the ``groups`` claim is computed for a client id (the federation narrows it per instance)."""
        self.groups_provider = provider

    def set_username_source(self, source: UsernameSource | None) -> None:
        """The function giving a member's username (the OpenID provider's ``preferred_username``, which
        the account page shows: a higher package, so it is set here)."""
        self.username_source = source

    def add_administering_role(self, check: AdministeringRole) -> None:
        """``check(db, member)`` tells whether a member administers others in a higher package's domain
        (e.g. hoster administrators): they must enrol a second factor (``mfa.step_up``)."""
        name = (check.__module__, check.__qualname__)
        self.administering_roles[:] = [c for c in self.administering_roles if (c.__module__, c.__qualname__) != name]
        self.administering_roles.append(check)

    def attach(self, database: Database) -> AccountExtensions:
        """Make every unit of work of ``database`` carry these extensions."""
        database.session_info[_KEY] = self
        return self

    @classmethod
    def attached_to(cls, database: Database) -> AccountExtensions:
        """The extensions attached to ``database``, attaching a new empty set if there are none yet."""
        found = database.session_info.get(_KEY)
        return found if isinstance(found, AccountExtensions) else cls().attach(database)


def of(db: Session) -> AccountExtensions:
    """The extensions of the application whose unit of work ``db`` is (a new empty set if none)."""
    found = db.info.get(_KEY)
    return found if isinstance(found, AccountExtensions) else AccountExtensions()
