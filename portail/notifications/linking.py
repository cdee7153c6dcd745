"""Linking a member's accounts on pulled sources, and unlinking them.

Matrix (client-server API "Client login via SSO" and ``m.login.token``): Portail sends the browser to
``{homeserver}/_matrix/client/v3/login/sso/redirect/oidc-<idp>?redirectUrl=<callback>``; the homeserver
logs the member in through Portail itself (its OIDC provider ``<idp>``: the node's provider identifier,
``encommun`` by default, the very ``idp_id`` of the Synapse snippet, ``federation.provisioning.synapse_idp``)
and, because the callback is listed in its ``sso.client_whitelist`` (also in the snippet), redirects
to ``<callback>&loginToken=…``. The callback's ``state`` is signed
and bound to the member and the instance (10 minutes), so nobody can make a member link someone
else's account. The login token is exchanged for a dedicated device whose access token is stored
sealed; unlinking logs that device out. Portail then registers its pusher with that device
(``gateway.py``), and unlinking removes it and forgets it.

Discourse: the member's User API key (scope ``notifications``) is stored sealed; it comes from
Discourse's own authorization flow (``user_api_keys.py``) or, as a fallback, is pasted by the member.
"""

from __future__ import annotations

from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, col, delete, select

from portail.config import Settings
from portail.federation import provisioning, snippets
from portail.federation.models import Instance
from portail.notifications.models import MatrixPusher, SourceLink, SourceState
from portail.notifications.sealing import Unsealable, seal, unseal

STATE_MAX_AGE = 600
CALLBACK = snippets.MATRIX_LINK_CALLBACK


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="portail.notifications.matrix-link")


def matrix_redirect(settings: Settings, member_id: int, instance: Instance) -> str:
    state = _signer(settings).dumps({"m": member_id, "i": instance.id})
    callback = f"{settings.issuer}{CALLBACK}?state={state}"
    _idp_id, exposed = provisioning.synapse_idp(instance)
    return (
        f"{instance.base_url.rstrip('/')}/_matrix/client/v3/login/sso/redirect/{quote(exposed, safe='')}"
        f"?redirectUrl={quote(callback, safe='')}"
    )


def read_state(settings: Settings, state: str, member_id: int) -> int | None:
    """The instance id a callback is for, if its state is genuine, fresh and this member's."""
    try:
        data = _signer(settings).loads(state, max_age=STATE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("m") != member_id or not isinstance(data.get("i"), int):
        return None
    return int(data["i"])


def links_of(session: Session, member_id: int) -> dict[int, SourceLink]:
    return {
        link.instance_id: link for link in session.exec(select(SourceLink).where(SourceLink.member_id == member_id))
    }


def store_link(
    session: Session,
    settings: Settings,
    member_id: int,
    instance_id: int,
    *,
    kind: str,
    account: str,
    secret: str,
    device_id: str | None = None,
) -> str | None:
    """Create or replace the link; returns the previous credential (to log its device out)."""
    row = session.exec(
        select(SourceLink).where(SourceLink.member_id == member_id, SourceLink.instance_id == instance_id)
    ).first()
    previous = None
    if row is not None:
        try:
            previous = unseal(settings.secret_key, row.secret_sealed)
        except Unsealable:
            previous = None
    else:
        row = SourceLink(member_id=member_id, instance_id=instance_id, kind=kind, secret_sealed="")
    row.kind, row.account, row.device_id = kind, account[:255], device_id
    row.secret_sealed = seal(settings.secret_key, secret)
    session.add(row)
    _reset_cursor(session, member_id, instance_id)
    session.add(SourceState(instance_id=instance_id, member_id=member_id))  # never read: due at once
    return previous


def remove_link(session: Session, settings: Settings, member_id: int, instance_id: int) -> tuple[str, str, str] | None:
    """Delete the link; returns (kind, instance base URL, credential) so the caller can log out."""
    row = session.exec(
        select(SourceLink).where(SourceLink.member_id == member_id, SourceLink.instance_id == instance_id)
    ).first()
    instance = session.get(Instance, instance_id)
    if row is None or instance is None:
        return None
    session.delete(row)
    _reset_cursor(session, member_id, instance_id)
    session.execute(
        delete(MatrixPusher).where(
            col(MatrixPusher.member_id) == member_id, col(MatrixPusher.instance_id) == instance_id
        )
    )
    try:
        return row.kind, instance.base_url.rstrip("/"), unseal(settings.secret_key, row.secret_sealed)
    except Unsealable:
        return None


def _reset_cursor(session: Session, member_id: int, instance_id: int) -> None:
    session.execute(
        delete(SourceState).where(col(SourceState.member_id) == member_id, col(SourceState.instance_id) == instance_id)
    )
