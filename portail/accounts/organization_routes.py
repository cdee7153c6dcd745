"""Pages of "My organizations" and of one organization (members, roles, invitations, join requests),
and the profile's territory selector (``/account/territory``).

Each handler parses the form, makes one domain call (``organizations``, ``memberships``) and
renders or redirects; refusals show a translated message with a 4xx status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portail.accounts import delays, mail_limits, memberships, organizations, regions
from portail.accounts.current import require_verified, safe_next
from portail.accounts.members import AccountError
from portail.accounts.models import Member, Organization
from portail.config import Settings
from portail.db import Database, row_id
from portail.web import N_, FormError, _, field, flash, read_form, render, request_locale


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def _base_url(request: Request) -> str:
    return str(request.app.state.settings.issuer).rstrip("/")


def _refusal(request: Request, exc: AccountError | FormError, title: str) -> Response:
    message = exc.message if isinstance(exc, FormError) else _(request, exc.message, **exc.params)
    status = (
        404
        if isinstance(exc, organizations.OrganizationNotFound)
        else 403
        if isinstance(exc, organizations.OrganizationForbidden)
        else 400
    )
    return render(request, "accounts/message.html", {"title": title, "error": message}, status)


# ---------------------------------------------------------------- my organizations


async def my_organizations(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    mine = await _db(request).run(organizations.memberships_of, login.member.id or 0)
    return render(request, "accounts/organizations.html", {"memberships": mine})


@dataclass(frozen=True)
class OrganizationPage:
    organization: Organization
    status: str  # the viewer's membership: "" | active | invited | requested
    role: str
    manager: bool
    roster: organizations.Roster | None


@dataclass(frozen=True)
class RosterCursor:
    """Where the roster page starts: after a membership id (``None``: the first page), or the last page."""

    after: int | None = None
    last: bool = False


def roster_cursor(query: Mapping[str, str]) -> RosterCursor | None:
    """The roster's cursor from the query string (``?after=<membership id>`` or ``?last=1``);
    ``None`` when it is malformed. A former ``?page=N`` is ignored (first page)."""
    after, last = query.get("after"), query.get("last")
    if last is not None:
        return RosterCursor(last=True) if last == "1" and after is None else None
    if after is None:
        return RosterCursor()
    if not (after.isascii() and after.isdecimal() and 0 < len(after) <= 18 and int(after) > 0):
        return None
    return RosterCursor(after=int(after))


def _organization_page(db: Session, member: Member, slug: str, cursor: RosterCursor) -> OrganizationPage:
    organization = organizations.get_organization(db, slug)
    row = organizations.membership_of(db, organization.id or 0, member.id or 0)
    manager = organizations.can_manage(db, member, organization.id or 0)
    return OrganizationPage(
        organization=organization,
        status=row.status if row else "",
        role=row.role if row else "",
        manager=manager,
        roster=organizations.roster(db, organization, cursor.after, last=cursor.last) if manager else None,
    )


async def organization_page(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    cursor = roster_cursor(request.query_params)
    if cursor is None:
        error = _(request, "Ce lien de page de la liste des membres n’est pas valide. Revenez à la première page.")
        title = _(request, "Page introuvable")
        first = {"url": request.url.path, "label": _(request, "Première page de la liste des membres")}
        return render(request, "accounts/message.html", {"title": title, "error": error, "back": first}, 400)
    try:
        data = await _db(request).run(_organization_page, login.member, request.path_params["slug"], cursor)
    except AccountError as exc:
        return _refusal(request, exc, _(request, "Organisation"))
    return render(
        request,
        "accounts/organization.html",
        {"page": data, "region": regions.name(data.organization.region), "roles": organizations.ROLES},
    )


def _act(
    db: Session, member: Member, slug: str, action: str, values: dict[str, str], settings: Settings, base_url: str
) -> tuple[str, str]:
    """Apply one action of the organization pages; returns the French confirmation and the name."""
    organization = organizations.get_organization(db, slug)
    return _apply(db, member, organization, action, values, settings, base_url), organization.name


def _apply(
    db: Session,
    member: Member,
    organization: Organization,
    action: str,
    values: dict[str, str],
    settings: Settings,
    base_url: str,
) -> str:
    target = values.get("member", "")
    if action == "join":
        status = memberships.request_to_join(db, settings, member, organization, base_url)
        return N_("Vous êtes membre de %(organization)s.") if status == "active" else N_("Votre demande est envoyée.")
    if action == "accept":
        memberships.accept_invitation(db, member, organization)
        return N_("Vous êtes membre de %(organization)s.")
    if action == "leave":
        previous = organizations.leave(db, member, organization)
        return {
            "active": N_("Vous avez quitté %(organization)s."),
            "invited": N_("Invitation refusée."),
        }.get(previous, N_("Demande annulée."))
    if action == "invite":
        result = memberships.invite(
            db, settings, member, organization, values.get("email", ""), values.get("role", "member"), base_url
        )
        return (
            N_("Invitation envoyée.")
            if result == "invited"
            else N_("Invitation envoyée; la personne doit créer un compte.")
        )
    if action == "approve":
        memberships.approve(db, settings, member, organization, target, base_url)
        return N_("Demande acceptée.")
    if action == "role":
        organizations.set_role(db, member, organization, target, values.get("role", ""))
        return N_("Rôle modifié.")
    if action == "remove":
        organizations.remove(db, member, organization, target)
        return N_("C’est fait.")
    raise AccountError("Action inconnue.")


async def organization_action(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    slug = request.path_params["slug"]
    title = _(request, "Organisation")
    try:
        form = await read_form(request)
        values = {k: field(form, k) for k in ("member", "email", "role")}
        action = request.path_params["action"]
        if action == "invite":
            await _check_mail(request, values["email"])
        elif action == "join":  # each request mails the organization's administrators
            await _check_mail(
                request,
                f"join:{login.member.id}:{slug}",
                N_("Votre demande a déjà été envoyée plusieurs fois récemment. Réessayez dans %(delay)s."),
            )
        message, name = await _db(request).run(
            _act,
            login.member,
            slug,
            request.path_params["action"],
            values,
            request.app.state.settings,
            _base_url(request),
        )
    except (AccountError, FormError) as exc:
        return _refusal(request, exc, title)
    flash(request, _(request, message, organization=name), "success")
    return RedirectResponse(safe_next(field(form, "next"), f"/organizations/{slug}"), status_code=303)


async def _check_mail(
    request: Request,
    address: str,
    limited: str = N_("Plusieurs courriels ont déjà été envoyés à cette adresse récemment. Réessayez dans %(delay)s."),
) -> None:
    """The mail limits (``mail_limits``) of an invitation (it mails any address) and of a join request
    (it mails the administrators: counted per member and organization, so asking, cancelling and
    asking again cannot flood them). Refusals are 4xx pages."""
    limiter: mail_limits.MailLimiter = request.app.state.mail_limiter
    verdict = await limiter.check(address, request.client.host if request.client else "")
    if verdict.retry_after:
        raise AccountError(
            "Trop de demandes d’envoi de courriel depuis votre connexion. Réessayez dans %(delay)s.",
            delay=delays.in_words(verdict.retry_after, request_locale(request)),
        )
    if verdict.address_limited:
        raise AccountError(
            limited,
            delay=delays.in_words(request.app.state.settings.mail_limit_window_minutes * 60, request_locale(request)),
        )


# ---------------------------------------------------------------- invitation links


async def invitation(request: Request) -> Response:
    """The mailed link: shows the invitation and accept/decline buttons (needs the invited account)."""
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    settings = request.app.state.settings
    token = request.query_params.get("token", "")
    title = _(request, "Invitation")
    if request.method == "GET":
        try:
            found = await _db(request).run(memberships.read_invitation, settings, login.member, token)
        except AccountError as exc:
            return _refusal(request, exc, title)
        return render(request, "accounts/invitation.html", {"invitation": found, "token": token})
    try:
        form = await read_form(request)
        accept = field(form, "decision") == "accept"
        found = await _db(request).run(memberships.answer_link, settings, login.member, field(form, "token"), accept)
    except (AccountError, FormError) as exc:
        return _refusal(request, exc, title)
    name = found.organization.name
    if accept:
        flash(request, _(request, "Vous êtes membre de %(organization)s.", organization=name), "success")
        return RedirectResponse(f"/organizations/{found.organization.slug}", status_code=303)
    flash(request, _(request, "Invitation refusée."), "success")
    return RedirectResponse("/organizations", status_code=303)


# ---------------------------------------------------------------- territory


async def territory(request: Request) -> Response:
    login = await require_verified(request)
    if isinstance(login, Response):
        return login
    db = _db(request)
    if request.method == "POST":
        try:
            form = await read_form(request)
            raw = field(form, "territory")
            chosen = row_id(raw)
            if raw and chosen is None:
                raise AccountError("Ce territoire n’existe pas.")
            await db.run(organizations.set_territory, login.member.id or 0, chosen)
        except (AccountError, FormError) as exc:
            return _refusal(request, exc, _(request, "Mon territoire"))
        flash(request, _(request, "Votre territoire est enregistré."), "success")
        return RedirectResponse(safe_next(field(form, "next"), "/account"), status_code=303)
    choices = await db.run(organizations.territories)
    groups: dict[str, list[Organization]] = {}
    for item in choices:
        groups.setdefault(regions.name(item.region) or _(request, "Autres"), []).append(item)
    return render(
        request,
        "accounts/territory.html",
        {
            "groups": groups,
            "current": login.member.territory_id,
            "next": safe_next(request.query_params.get("next"), "/account"),
        },
    )


routes = [
    Route("/organizations", my_organizations, methods=["GET"], name="organizations"),
    Route("/organizations/invitation", invitation, methods=["GET", "POST"], name="organization_invitation"),
    Route("/organizations/{slug}", organization_page, methods=["GET"], name="organization"),
    Route(
        "/organizations/{slug}/{action:str}",
        organization_action,
        methods=["POST"],
        name="organization_action",
    ),
    Route("/account/territory", territory, methods=["GET", "POST"], name="account_territory"),
]
