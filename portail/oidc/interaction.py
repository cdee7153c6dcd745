"""Park and resume an ``/authorize`` request while the member logs in, confirms their email or
consents (the login/consent seam of ARCHITECTURE.md).

The validated request is parked server-side (``ParkedRequest``: its parameters, a random id, 30
minutes to live); the browser only carries the id. Resuming re-validates and re-runs the prompts
on the **parked** parameters, never on anything the browser sends back, so a client disabled or a
redirect URI removed meanwhile is noticed.

State diagram of one interaction::

    GET|POST /authorize ──validate──► invalid client/redirect_uri ──► error page (member's language)
          │                  └──────► other invalid parameter ─────► error to redirect_uri (+state, iss)
          ▼
       prompts ── nothing needed ──────────────────────────────────► code to redirect_uri (no page)
          │   ├─ prompt=none and something needed ─────────────────► login_required | consent_required |
          │   │                                                      interaction_required to redirect_uri
          │   └─ an access rule closes the client to this member ──► "reserved" page (403; access_denied
          │                                                          with prompt=none)
          ▼ (park: PARKED)
     ┌─ login needed ──► /login?next=/authorize/resume/{id} ──┐
     ├─ email unconfirmed ──► "confirm your email" page ──────┤ (member acts)
     ├─ second factor needed ──► /login/second-step?next=… ───┤
     ├─ policy changed ──► /privacy/review?next=resume ───────┤
     └─ consent needed ──► /authorize/consent/{id} ───────────┤
                              │ deny ──► access_denied to redirect_uri (DONE)
                              │ allow ─► consent recorded ────┤
                                                              ▼
                     /authorize/resume/{id}: re-validate the PARKED request, prompts again
                              │ ── nothing needed ──► code to redirect_uri (DONE: parked row deleted)
                              └─ still something needed ──► back to the matching page (still PARKED)
     PARKED for 30 minutes without completion ──► EXPIRED: "start again from the tool" page
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import delete
from sqlmodel import Session, col

from portail.accounts import policy, sessions
from portail.accounts.current import Login
from portail.config import Settings
from portail.db import utcnow
from portail.oidc import codes, consents, prompts
from portail.oidc.authorization_request import (
    AskVerification,
    AuthzRequest,
    GoTo,
    Outcome,
    Refused,
    ShowError,
    error_reply,
    reply,
    validate,
)
from portail.oidc.models import ParkedRequest

PARK_FOR = dt.timedelta(minutes=30)
EXPIRED = ShowError("Cette demande de connexion a expiré ou a déjà servi. Retournez à l’outil pour recommencer.")


def resume_path(parked_id: str) -> str:
    return f"/authorize/resume/{parked_id}"


def consent_path(parked_id: str) -> str:
    return f"/authorize/consent/{parked_id}"


def login_url(parked_id: str, *, force: bool) -> str:
    url = "/login?next=" + quote(resume_path(parked_id), safe="")
    return url + "&prompt=login" if force else url


def park(db: Session, req: AuthzRequest, *, login_after: dt.datetime | None) -> ParkedRequest:
    now = utcnow()
    db.execute(delete(ParkedRequest).where(col(ParkedRequest.expires_at) < now))  # type: ignore[call-overload]
    row = ParkedRequest(
        id=secrets.token_urlsafe(24),
        client_id=req.client.client_id,
        params=dict(req.params),
        login_after=login_after,
        consent_forced="consent" in req.prompt,
        created_at=now,
        expires_at=now + PARK_FOR,
    )
    db.add(row)
    return row


def load(db: Session, parked_id: str) -> ParkedRequest | None:
    row = db.get(ParkedRequest, parked_id) if 0 < len(parked_id) <= 64 else None
    return row if row is not None and row.expires_at > utcnow() else None


def proceed(
    db: Session, settings: Settings, req: AuthzRequest, login: Login | None, parked: ParkedRequest | None
) -> Outcome:
    """Run the prompts; issue the code, answer an error, or park and send the member to a page."""
    step = prompts.decide(db, settings, req, login, parked)
    if step.kind == "refuse":
        if parked is not None:
            db.delete(parked)
        return ShowError(step.description, 403)
    if step.kind in ("issue", "error"):
        if parked is not None:
            db.delete(parked)
        if step.kind == "error":
            return error_reply(settings, req, step.error, step.description)
        assert login is not None
        return reply(settings, req, [("code", codes.issue(db, settings, req, login))])
    if parked is None:
        parked = park(db, req, login_after=utcnow() if step.kind == "login" else None)
    elif step.kind == "login" and parked.login_after is None:
        parked.login_after = utcnow()
        db.add(parked)
    if step.kind == "login":
        return GoTo(login_url(parked.id, force=login is not None))
    if step.kind == "verify":
        return AskVerification(resume_path(parked.id))
    if step.kind == "mfa":
        return GoTo("/login/second-step?next=" + quote(resume_path(parked.id), safe=""))
    if step.kind == "step":
        assert login is not None and login.pending_step
        return GoTo(sessions.step_url(login.pending_step, resume_path(parked.id)))
    return GoTo(consent_path(parked.id))


def start(db: Session, settings: Settings, pairs: tuple[tuple[str, str], ...], login: Login | None) -> Outcome:
    """``/authorize``: validate, then proceed."""
    try:
        req = validate(db, settings, pairs)
    except Refused as refused:
        return refused.outcome
    return proceed(db, settings, req, login, None)


def _reload(db: Session, settings: Settings, parked_id: str) -> tuple[ParkedRequest, AuthzRequest] | Outcome:
    parked = load(db, parked_id)
    if parked is None:
        return EXPIRED
    try:
        return parked, validate(db, settings, tuple(parked.params.items()))
    except Refused as refused:
        db.delete(parked)
        return refused.outcome


def resume(db: Session, settings: Settings, parked_id: str, login: Login | None) -> Outcome:
    """``/authorize/resume/{id}``: the prompts again, on the parked request."""
    found = _reload(db, settings, parked_id)
    if not isinstance(found, tuple):
        return found
    parked, req = found
    return proceed(db, settings, req, login, parked)


@dataclass(frozen=True)
class ConsentView:
    """What the consent page shows."""

    parked_id: str
    req: AuthzRequest
    previous_scopes: list[str]
    policy_version: str


def consent_view(db: Session, settings: Settings, parked_id: str, login: Login | None) -> ConsentView | Outcome:
    found = _reload(db, settings, parked_id)
    if not isinstance(found, tuple):
        return found
    parked, req = found
    if login is None:
        return GoTo(login_url(parked.id, force=False))
    if not login.member.verified:
        return AskVerification(resume_path(parked.id))
    previous = consents.current(db, login.member.id or 0, req.client.client_id)
    kept = previous.scopes.split() if previous is not None and previous.withdrawn_at is None else []
    return ConsentView(parked.id, req, kept, policy.current_version(db, settings))


def answer_consent(
    db: Session, settings: Settings, parked_id: str, login: Login | None, allow: bool
) -> ConsentView | Outcome:
    """The member's decision: deny → ``access_denied`` to the client; allow → record, proceed."""
    found = consent_view(db, settings, parked_id, login)
    if not isinstance(found, ConsentView):
        return found
    req = found.req
    parked = load(db, parked_id)
    assert login is not None and parked is not None
    member_id = login.member.id or 0
    if not allow:
        consents.record_denial(db, settings, member_id, req.client.client_id, req.scopes)
        db.delete(parked)
        return error_reply(settings, req, "access_denied", "The member denied the request")
    consents.record(db, settings, member_id, req.client.client_id, req.scopes, req.requested_claims)
    parked.consent_forced = False
    db.add(parked)
    return proceed(db, settings, req, login, parked)
