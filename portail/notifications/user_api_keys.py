"""Discourse User API keys obtained through Discourse's own authorization flow, not pasted.

Discourse "User API keys specification" (meta.discourse.org/t/48536) and
``app/controllers/user_api_keys_controller.rb``:

1. For each request Portail makes an RSA key pair (2048 bits) and a nonce, keeps the private key sealed in
   a ``DiscourseKeyRequest`` row and sends the browser to ``{discourse}/user-api-key/new?application_name=…
   &client_id=…&scopes=notifications&public_key=<PEM>&nonce=…&auth_redirect=<callback>?state=…``.
2. The member approves on Discourse, which creates the key (replacing any older key of the same
   ``client_id`` for that user) and redirects to ``auth_redirect`` with ``&payload=`` the Base64 of the
   JSON ``{"key", "nonce", "push", "api"}`` encrypted with the public key (RSA PKCS #1 v1.5). Discourse
   does so only if ``auth_redirect`` matches its ``allowed_user_api_auth_redirects`` site setting.
3. The callback's ``state`` is signed, bound to the member and the instance, valid ten minutes, and
   names the request row, which is deleted on first use: a state works once. Portail decrypts the
   payload with that request's private key, checks the nonce, and the route stores the key sealed
   (``linking.store_link``), exactly as the paste flow does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from portail.config import Settings
from portail.db import utcnow
from portail.federation.models import Instance
from portail.notifications.models import DiscourseKeyRequest
from portail.notifications.sealing import Unsealable, seal, unseal
from portail.web import N_

CALLBACK = "/notifications/link/discourse/callback"
STATE_MAX_AGE = 600
SCOPES = "notifications"
APPLICATION_NAME = "Portail En commun"
MAX_PAYLOAD = 4096

EXPIRED = N_("Cette demande de liaison Discourse est invalide, déjà utilisée ou expirée. Veuillez recommencer.")
UNREADABLE = N_("La réponse de Discourse est illisible. Veuillez recommencer la liaison.")
WRONG_NONCE = N_("La réponse de Discourse ne correspond pas à cette demande. Veuillez recommencer la liaison.")


class KeyFlowError(Exception):
    """The callback cannot be honoured; ``message`` is French, translated by the route."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="portail.notifications.discourse-key")


def client_id(settings: Settings) -> str:
    """Stable per Portail, so a new key replaces the member's previous one on that Discourse."""
    return f"portail-{urlsplit(settings.issuer).netloc or 'en-commun'}"


def begin(session: Session, settings: Settings, member_id: int, instance: Instance) -> str:
    """Record a new request and return the Discourse URL to send the member's browser to."""
    cutoff = utcnow() - dt.timedelta(seconds=STATE_MAX_AGE)
    session.execute(sa.delete(DiscourseKeyRequest).where(col(DiscourseKeyRequest.created_at) < cutoff))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    request = DiscourseKeyRequest(
        member_id=member_id,
        instance_id=instance.id or 0,
        nonce=secrets.token_urlsafe(24),
        private_key_sealed=seal(settings.secret_key, private_pem),
    )
    session.add(request)
    session.flush()
    state = _signer(settings).dumps({"m": member_id, "i": instance.id, "r": request.id})
    query = urlencode(
        {
            "application_name": APPLICATION_NAME,
            "client_id": client_id(settings),
            "scopes": SCOPES,
            "public_key": public_pem,
            "nonce": request.nonce,
            "auth_redirect": f"{settings.issuer}{CALLBACK}?state={state}",
        }
    )
    return f"{instance.base_url.rstrip('/')}/user-api-key/new?{query}"


@dataclass(frozen=True)
class Pending:
    """A request taken out of the database by its callback: what is needed to open the payload."""

    instance_id: int
    nonce: str
    private_key_sealed: str


def consume(session: Session, settings: Settings, member_id: int, state: str) -> Pending:
    """Take (delete) the request the callback's ``state`` names, if genuine, fresh and this member's.

    Call it in a transaction of its own, so that a state is spent even when its payload then fails."""
    try:
        data = _signer(settings).loads(state, max_age=STATE_MAX_AGE)
    except BadSignature as exc:
        raise KeyFlowError(EXPIRED) from exc
    if not isinstance(data, dict) or data.get("m") != member_id or not isinstance(data.get("r"), int):
        raise KeyFlowError(EXPIRED)
    request = session.exec(
        select(DiscourseKeyRequest).where(
            DiscourseKeyRequest.id == data["r"],
            DiscourseKeyRequest.member_id == member_id,
            DiscourseKeyRequest.instance_id == data.get("i"),
        )
    ).first()
    if request is None:
        raise KeyFlowError(EXPIRED)
    pending = Pending(request.instance_id, request.nonce, request.private_key_sealed)
    deleted = session.execute(sa.delete(DiscourseKeyRequest).where(col(DiscourseKeyRequest.id) == request.id))
    if getattr(deleted, "rowcount", 0) != 1:  # another tab spent it in the meantime
        raise KeyFlowError(EXPIRED)
    return pending


def open_payload(settings: Settings, pending: Pending, payload: str) -> str:
    """The User API key inside Discourse's ``payload``, once decrypted and its nonce checked."""
    if not payload or len(payload) > MAX_PAYLOAD:
        raise KeyFlowError(UNREADABLE)
    try:
        # Discourse encodes with Ruby's Base64.encode64: a newline every 60 characters.
        ciphertext = base64.b64decode("".join(payload.split()), validate=True)
        pem = unseal(settings.secret_key, pending.private_key_sealed).encode()
        private_key = serialization.load_pem_private_key(pem, None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise KeyFlowError(UNREADABLE)
        data = json.loads(private_key.decrypt(ciphertext, padding.PKCS1v15()))
    except (binascii.Error, ValueError, Unsealable, UnicodeDecodeError) as exc:
        raise KeyFlowError(UNREADABLE) from exc
    if not isinstance(data, dict):
        raise KeyFlowError(UNREADABLE)
    nonce, key = data.get("nonce"), data.get("key")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), pending.nonce.encode()):
        raise KeyFlowError(WRONG_NONCE)
    if not isinstance(key, str) or not key or len(key) > 200 or not key.isprintable():
        raise KeyFlowError(UNREADABLE)
    return key
