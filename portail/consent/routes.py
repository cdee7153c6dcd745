"""The member's pages: "Mes données" (tools, purposes, access log, ledger, export, deletion) and the
privacy-policy review after a material change.

Each handler parses, makes one domain call through ``db.run`` and renders; a refused operation
(``ConsentError``) answers with its status and a translated message, never a 500.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts import delays, throttle
from portail.accounts import policy as accounts_policy
from portail.accounts.current import Login, clear_session_cookie, load_login, login_redirect, safe_next
from portail.config import Settings
from portail.consent import access_log, deletion, export, ledger, policy, purposes, withdrawal
from portail.consent.errors import ConsentError
from portail.db import Database
from portail.federation import residency
from portail.web import FormError, _, error_page, field, flash, read_form, render, request_locale

LEDGER_PAGE = 50


def _deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _refused(request: Request, exc: ConsentError) -> Response:
    return error_page(request, exc.status, _(request, exc.message, **exc.params))


def _wake_jobs(request: Request) -> None:
    wake = getattr(request.app.state, "wake_privacy_jobs", None)
    if wake is not None:
        wake()


def _overview(db: Session, settings: Settings, member_id: int) -> dict[str, Any]:
    latest = export.latest(db, member_id)
    accepted = ledger.acceptances(db, member_id)
    tools = ledger.tools(db, member_id)
    return {
        "tools": tools,
        "residencies": residency.for_clients(db, [t.client_id for t in tools]),  # where each tool keeps data
        "purposes": purposes.states(db, settings, member_id),
        "ledger": ledger.entries(db, member_id, limit=10),
        "export": latest,
        "export_link": export.link_for(db, settings, member_id, latest.id) if latest else None,
        "deletion": deletion.pending_for(db, member_id),
        "accepted": accepted,
        "grace_days": settings.deletion_grace_days,
    }


async def my_data(request: Request) -> Response:
    settings, db = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    try:
        context = await db.run(_overview, settings, login.member.id or 0)
    except ConsentError as exc:  # e.g. an unreadable purposes configuration
        return _refused(request, exc)
    return render(request, "consent/data.html", context)


async def my_ledger(request: Request) -> Response:
    _settings, db = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    raw = request.query_params.get("page", "1")
    page = min(int(raw), 10_000) if raw.isascii() and raw.isdecimal() and len(raw) < 10 and int(raw) > 0 else 1
    rows = await db.run(ledger.entries, login.member.id or 0, limit=LEDGER_PAGE + 1, offset=(page - 1) * LEDGER_PAGE)
    return render(
        request,
        "consent/ledger.html",
        {"entries": rows[:LEDGER_PAGE], "page": page, "more": len(rows) > LEDGER_PAGE},
    )


async def my_access_log(request: Request) -> Response:
    _settings, db = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    rows = await db.run(access_log.entries, login.member.id or 0, limit=500)
    return render(request, "consent/access.html", {"entries": rows})


async def _posted(request: Request) -> tuple[Login | None, Any, Response | None]:
    """The login and the form of a POST, or the response refusing it."""
    login = await load_login(request)
    if login is None:
        return None, None, login_redirect(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return login, None, error_page(request, 400, exc.message)
    return login, form, None


async def withdraw(request: Request) -> Response:
    _settings, db = _deps(request)
    login, _form, refused = await _posted(request)
    if refused or login is None:
        return refused or login_redirect(request)
    client_id = request.path_params["client_id"]
    try:
        done = await db.run(withdrawal.withdraw, login.member.id or 0, client_id, ip_address=_ip(request))
    except ConsentError as exc:
        return _refused(request, exc)
    flash(
        request,
        _(
            request,
            "Votre consentement à %(tool)s est retiré : ses jetons sont révoqués et il a été déconnecté. "
            "Il vous demandera votre consentement à la prochaine connexion.",
            tool=done.tool,
        ),
        "success",
    )
    return RedirectResponse("/account/data", status_code=303)


async def choose_purpose(request: Request) -> Response:
    settings, db = _deps(request)
    login, form, refused = await _posted(request)
    if refused or login is None:
        return refused or login_redirect(request)
    granted = field(form, "granted") == "on"
    try:
        await db.run(purposes.choose, settings, login.member.id or 0, request.path_params["key"], granted)
    except ConsentError as exc:
        return _refused(request, exc)
    message = (
        "Votre choix est enregistré : cette finalité est activée."
        if granted
        else ("Votre choix est enregistré : cette finalité est désactivée.")
    )
    flash(request, _(request, message), "success")
    return RedirectResponse("/account/data#purposes", status_code=303)


async def request_export(request: Request) -> Response:
    _settings, db = _deps(request)
    login, _form, refused = await _posted(request)
    if refused or login is None:
        return refused or login_redirect(request)
    await db.run(export.request_export, login.member.id or 0, ip_address=_ip(request))
    _wake_jobs(request)
    flash(
        request,
        _(request, "Votre archive est en préparation. Vous recevrez un courriel dès qu’elle sera prête."),
        "success",
    )
    return RedirectResponse("/account/data#export", status_code=303)


async def download_export(request: Request) -> Response:
    settings, db = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    try:
        name, body = await db.run(export.open_link, settings, request.path_params["token"], login.member.id or 0)
    except ConsentError as exc:
        return _refused(request, exc)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


async def request_deletion(request: Request) -> Response:
    settings, db = _deps(request)
    login, form, refused = await _posted(request)
    if refused or login is None:
        return refused or login_redirect(request)
    member = login.member
    key, ip = member.email_key, _ip(request)  # failures count as failed logins of the account
    wait = await db.run(throttle.retry_after, key, ip)
    if wait:
        return error_page(
            request,
            429,
            _(
                request,
                "Trop de tentatives. Réessayez dans %(delay)s.",
                delay=delays.in_words(wait, request_locale(request)),
            ),
        )
    if not await request.app.state.passwords.verify_async(member.password_hash, str(form.get("password") or "")):
        await db.run(throttle.record_failure, key, ip, settings)
        # The overview again, with the error at the password field (the form is at the bottom).
        context = await db.run(_overview, settings, member.id or 0)
        context["delete_error"] = _(request, "Mot de passe incorrect : la suppression n’a pas été demandée.")
        return render(request, "consent/data.html", context, 400)
    try:
        row = await db.run(deletion.request_deletion, settings, member.id or 0, ip_address=ip)
    except ConsentError as exc:
        return _refused(request, exc)
    request.state.login = request.state.member = None  # every session just ended: render logged out
    response = render(request, "consent/deletion_requested.html", {"due": row.due_at, "member": None})
    clear_session_cookie(response, settings)
    return response


async def cancel_deletion(request: Request) -> Response:
    settings, db = _deps(request)
    login, _form, refused = await _posted(request)
    if refused or login is None:
        return refused or login_redirect(request)
    if await db.run(deletion.cancel, settings, login.member.id or 0, "member", actor_id=login.member.id):
        flash(request, _(request, "La suppression de votre compte est annulée."), "success")
    return RedirectResponse("/account/data#delete", status_code=303)


async def review_policy(request: Request) -> Response:
    settings, db = _deps(request)
    login = await load_login(request)
    if login is None:
        return login_redirect(request)
    next_url = safe_next(request.query_params.get("next"))
    if request.method == "POST":
        try:
            form = await read_form(request)
        except FormError as exc:
            return error_page(request, 400, exc.message)
        next_url = safe_next(field(form, "next"))
        if field(form, "accept") != "yes":
            return await _review_page(request, settings, db, login, next_url, 400)
        await db.run(policy.accept_current, settings, login.member.id or 0)
        flash(request, _(request, "Merci : vous avez accepté la politique de confidentialité à jour."), "success")
        return RedirectResponse(next_url, status_code=303)
    return await _review_page(request, settings, db, login, next_url, 200)


async def _review_page(
    request: Request, settings: Settings, db: Database, login: Login, next_url: str, status: int
) -> Response:
    changes = await db.run(lambda s: policy.pending_changes(s, settings, login.member))
    current = await db.run(accounts_policy.current_version, settings)
    error = _(request, "Cochez la case pour accepter ou déconnectez-vous.") if status == 400 else None
    context = {
        "changes": changes,
        "next": next_url,
        "error": error,
        "pending": bool(login.pending_step),
        "current_version": current,
        "accepted_version": login.member.privacy_version,
    }
    return render(request, "consent/review.html", context, status_code=status)


def _history(db: Session, settings: Settings, member_id: int | None) -> dict[str, Any]:
    return {
        "versions": policy.history(db),
        "current_version": accounts_policy.current_version(db, settings),
        "accepted": ledger.acceptances(db, member_id) if member_id else {},
    }


async def policy_history(request: Request) -> Response:
    """Published versions, the version in force, and (for a member) their acceptances from the ledger."""
    settings, db = _deps(request)
    login = await load_login(request)
    context = await db.run(_history, settings, login.member.id if login else None)
    return render(request, "consent/history.html", context)


routes = [
    Route("/account/data", my_data, methods=["GET"], name="my_data"),
    Route("/account/data/ledger", my_ledger, methods=["GET"], name="my_data_ledger"),
    Route("/account/data/access", my_access_log, methods=["GET"], name="my_data_access"),
    Route("/account/data/tools/{client_id}/withdraw", withdraw, methods=["POST"], name="my_data_withdraw"),
    Route("/account/data/purposes/{key}", choose_purpose, methods=["POST"], name="my_data_purpose"),
    Route("/account/data/export", request_export, methods=["POST"], name="my_data_export"),
    Route("/account/data/export/{token}", download_export, methods=["GET"], name="my_data_download"),
    Route("/account/data/delete", request_deletion, methods=["POST"], name="my_data_delete"),
    Route("/account/data/delete/cancel", cancel_deletion, methods=["POST"], name="my_data_delete_cancel"),
    Route("/privacy/review", review_policy, methods=["GET", "POST"], name="privacy_review"),
    Route("/privacy/history", policy_history, methods=["GET"], name="privacy_history"),
]
