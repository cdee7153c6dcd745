"""The second-factor gate of pages that administer others (setting ``mfa_required_for_admins``).

On a path under one of the gate's ``guarded`` prefixes (``create_app``'s pages that administer
others), a member whose roles administer others
(``step_up.administers_others``) is sent to enrol a second factor when they have none, or to the
second step when their session was opened without one. Everyone else passes (the page itself then
decides who may see it).
"""

from __future__ import annotations

from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from portail.accounts.current import load_login
from portail.accounts.mfa import factors, step_up
from portail.accounts.models import Member


def verdict(db: Session, member_id: int, amr: str) -> str | None:
    """``enrol``, ``step-up`` or None (may pass)."""
    member = db.get(Member, member_id)
    if member is None or not step_up.administers_others(db, member):
        return None
    if not factors.enrolled(db, member_id):
        return "enrol"
    return None if step_up.is_mfa(amr) else "step-up"


class SecondFactorGate:
    def __init__(self, app: ASGIApp, guarded: tuple[str, ...] = ()) -> None:
        self.app = app
        self.guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and step_up.guarded(str(scope["path"]), self.guarded):
            request = Request(scope, receive)
            settings = request.app.state.settings
            login = await load_login(request) if settings.mfa_required_for_admins else None
            if login is not None:
                found = await request.app.state.db.run(verdict, login.member.id or 0, login.session.amr)
                if found is not None:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    page = "/account/security" if found == "enrol" else "/login/second-step"
                    response = RedirectResponse(f"{page}?next={quote(target, safe='')}", status_code=303)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
