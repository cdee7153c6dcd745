"""Credentials of pulled sources, sealed at rest.

Matrix access tokens and Discourse User API keys are encrypted with Fernet (AES-128-CBC + HMAC-SHA256)
under a key derived from Portail's ``secret_key`` with HKDF-SHA256 (RFC 5869) and a purpose-specific
``info``, so that this key is useless for anything else and a database dump alone reveals nothing.
Rotating ``secret_key`` makes sealed credentials unreadable: members then link their tools again.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"portail.notifications.source-link.v1"


class Unsealable(Exception):
    """The sealed value was not made with this secret key (or was tampered with)."""


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, value: str) -> str:
    return _fernet(secret_key).encrypt(value.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise Unsealable("sealed credential unreadable") from exc
