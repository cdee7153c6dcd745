"""Pages of the person in charge of personal information (members with the ``privacy-officer`` role,
and administrators): the queue of deletion and access requests with the account-event deliveries,
the register of confidentiality incidents; and the administrators' page publishing privacy-policy
versions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts.current import Login, load_login, login_redirect
from portail.config import Settings
from portail.consent import deletion, events, incidents, policy
from portail.consent.errors import ConsentError
from portail.db import Database
from portail.web import FormError, _, error_page, field, flash, read_form, render

ROLE = "privacy-officer"
Page = Callable[[Request, Login], Awaitable[Response]]


def _deps(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def _guard(*, admin_only: bool = False) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    def wrap(page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            login = await load_login(request)
            if login is None:
                return login_redirect(request)
            allowed = login.member.is_admin if admin_only else login.member.has_role(ROLE)
            if not allowed:
                return error_page(request, 403)
            return await page(request, login)

        handler.__name__ = page.__name__
        return handler

    return wrap


@_guard()
async def queue(request: Request, login: Login) -> Response:
    _settings, db = _deps(request)
    entries = await db.run(deletion.queue)
    deliveries = await db.run(events.deliveries)
    return render(request, "consent/officer.html", {"entries": entries, "deliveries": deliveries})


@_guard()
async def register(request: Request, login: Login) -> Response:
    _settings, db = _deps(request)
    rows = await db.run(incidents.register)
    return render(
        request,
        "consent/incidents.html",
        {"incidents": rows, "missing": {r.reference for r in rows if incidents.notification_missing(r)}},
    )


def _form(form: FormData) -> incidents.IncidentForm:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    return incidents.IncidentForm(
        title=field(form, "title"),
        occurred=field(form, "occurred"),
        discovered_on=field(form, "discovered_on"),
        circumstances=text("circumstances"),
        information=text("information"),
        people_count=field(form, "people_count"),
        risk_assessment=text("risk_assessment"),
        serious_risk=form.get("serious_risk") == "on",
        measures=text("measures"),
        cai_notified_on=field(form, "cai_notified_on"),
        people_notified_on=field(form, "people_notified_on"),
        public_notice=text("public_notice"),
    )


@_guard()
async def incident(request: Request, login: Login) -> Response:
    """New incident (``/new``) or an existing one (``/{reference}``): the form, and its submission."""
    _settings, db = _deps(request)
    reference = request.path_params.get("reference")
    current = None
    if reference:
        try:
            current = await db.run(incidents.get, reference)
        except ConsentError as exc:
            return error_page(request, exc.status, _(request, exc.message, **exc.params))
    if request.method == "GET":
        return render(request, "consent/incident_form.html", {"incident": current, "values": None})
    try:
        raw = await read_form(request)
        values = _form(raw)
        if reference:
            await db.run(incidents.amend, reference, values, actor_id=login.member.id)
        else:
            await db.run(incidents.record, values, actor_id=login.member.id)
    except FormError as exc:
        return render(request, "consent/incident_form.html", {"incident": current, "error": exc.message}, 400)
    except ConsentError as exc:
        message = _(request, exc.message, **exc.params)
        context = {"incident": current, "values": values, "error": message}
        return render(request, "consent/incident_form.html", context, exc.status)
    flash(request, _(request, "L’incident est inscrit au registre."), "success")
    return RedirectResponse("/privacy-officer/incidents", status_code=303)


@_guard(admin_only=True)
async def policy_admin(request: Request, login: Login) -> Response:
    settings, db = _deps(request)
    context: dict[str, object] = {"values": {}, "setting_version": settings.privacy_policy_version}
    if request.method == "POST":
        try:
            form = await read_form(request)
            context["values"] = {k: field(form, k) for k in ("version", "summary_fr", "summary_en", "kind")}
            await db.run(
                lambda s: policy.publish(
                    s,
                    version=field(form, "version"),
                    material=field(form, "kind") != "minor",
                    summary_fr=str(form.get("summary_fr") or ""),
                    summary_en=str(form.get("summary_en") or ""),
                    actor_id=login.member.id,
                )
            )
        except FormError as exc:
            context["error"] = exc.message
        except ConsentError as exc:
            context["error"] = _(request, exc.message, **exc.params)
        else:
            flash(request, _(request, "La nouvelle version de la politique est publiée."), "success")
            return RedirectResponse("/admin/privacy", status_code=303)
    context["versions"] = await db.run(policy.history)
    return render(request, "consent/admin_policy.html", context, 400 if "error" in context else 200)


routes = [
    Route("/privacy-officer", queue, methods=["GET"], name="privacy_officer"),
    Route("/privacy-officer/incidents", register, methods=["GET"], name="privacy_incidents"),
    Route("/privacy-officer/incidents/new", incident, methods=["GET", "POST"], name="privacy_incident_new"),
    Route("/privacy-officer/incidents/{reference}", incident, methods=["GET", "POST"], name="privacy_incident"),
    Route("/admin/privacy", policy_admin, methods=["GET", "POST"], name="privacy_admin"),
]
