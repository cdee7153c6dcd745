"""OpenID Connect RP-Initiated Logout 1.0: validating a logout request (no HTTP here).

- §2: parameters ``id_token_hint`` (optional; its signature is verified against Portail's keys and
  it is accepted after expiry), ``logout_hint``, ``client_id``, ``post_logout_redirect_uri``,
  ``state``, ``ui_locales``. When both ``client_id`` and the hint are present, ``client_id`` must
  be one of the hint's audiences.
- §3: the OP redirects only to a ``post_logout_redirect_uri`` that exactly matches one registered
  by the identified client; any other value is an error shown on Portail's own page (§4: "the OP
  MUST NOT perform post-logout redirection" after an error), never an open redirect. ``state`` is
  echoed in the redirect.
- §6: without a valid hint that names the browser's current session (its ``sid``), the member
  confirms on a page first (Nextcloud sends no hint by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import Session

from portail.config import Settings
from portail.oidc import clients, keys

PARAMETERS = ("id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
MAX_LENGTH = 8000


class LogoutRequestError(Exception):
    """The request cannot be honoured; the member sees ``description`` (ASCII, also logged)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class LogoutRequest:
    client_id: str | None
    client_name: str | None
    redirect_uri: str | None  # validated post_logout_redirect_uri, state already added
    hint_sid: str | None  # the ``sid`` of a valid id_token_hint
    hint_sub: str | None
    ui_locales: str | None
    params: dict[str, str]  # the original parameters, for the confirmation form

    def confirmed_by_hint(self, current_sid: str | None) -> bool:
        """§6: the hint names the browser's session, so no confirmation is needed."""
        return bool(self.hint_sid and current_sid and self.hint_sid == current_sid)


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The known parameters, each at most once (OIDC Core §3.1.2.1 applies to every endpoint)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            continue
        if name in values:
            raise LogoutRequestError(f"parameter {name} is repeated")
        if len(value) > MAX_LENGTH:
            raise LogoutRequestError(f"parameter {name} is too long")
        if value:
            values[name] = value
    return values


def verify_hint(db: Session, settings: Settings, token: str) -> dict[str, Any]:
    """§2: Portail must have issued the ID token; an expired one is still accepted."""
    try:
        _header, payload = keys.ring_of(db).decode(token)
    except keys.BadSignature as exc:
        raise LogoutRequestError("id_token_hint is not an ID token issued by this provider") from exc
    if payload.get("iss") != settings.issuer:
        raise LogoutRequestError("id_token_hint was issued by another provider")
    return payload


def with_state(uri: str, state: str | None) -> str:
    if not state:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode({'state': state})}" if parts.query else urlencode({"state": state})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def validate(db: Session, settings: Settings, params: dict[str, str]) -> LogoutRequest:
    """Check a logout request; raises ``LogoutRequestError`` for anything that must not redirect."""
    hint = params.get("id_token_hint")
    payload = verify_hint(db, settings, hint) if hint else None
    client_id = params.get("client_id")
    if payload is not None:
        aud = payload.get("aud")
        audiences = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        if client_id and client_id not in audiences:
            raise LogoutRequestError("client_id does not match the aud of id_token_hint")
        if not client_id and len(audiences) == 1:
            client_id = audiences[0]
    client = clients.get_client(db, client_id) if client_id else None
    if client_id and (client is None or not client.active):
        raise LogoutRequestError("unknown client_id")
    redirect_uri = params.get("post_logout_redirect_uri")
    if redirect_uri is not None:
        if client is None:
            raise LogoutRequestError("post_logout_redirect_uri needs client_id or id_token_hint")
        if redirect_uri not in client.post_logout_redirect_uris:
            raise LogoutRequestError("post_logout_redirect_uri is not registered for this client")
    sid = payload.get("sid") if payload else None
    sub = payload.get("sub") if payload else None
    return LogoutRequest(
        client_id=client.client_id if client else None,
        client_name=client.name if client else None,
        redirect_uri=with_state(redirect_uri, params.get("state")) if redirect_uri else None,
        hint_sid=sid if isinstance(sid, str) else None,
        hint_sub=sub if isinstance(sub, str) else None,
        ui_locales=params.get("ui_locales"),
        params=params,
    )


def pick_ui_locale(ui_locales: str | None) -> str | None:
    """The first of the RP's ``ui_locales`` that Portail speaks (fr-CA or en)."""
    for tag in (ui_locales or "").split()[:10]:
        lowered = tag.lower()
        if lowered.startswith("fr"):
            return "fr-CA"
        if lowered.startswith("en"):
            return "en"
    return None
