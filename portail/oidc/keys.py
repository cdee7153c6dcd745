"""Signing keys of the provider (RFC 7517 JWK, RFC 7518 §3.3 RS256 and §3.4 ES256).

- Two algorithms: RS256 (RSA 2048, what OIDC Core §15.1 requires and what ID tokens use by
  default) and ES256 (P-256, seven times cheaper to sign: JWT access tokens use it). Each key has a
  ``kid`` (its RFC 7638 thumbprint) and ``use: sig``.
- Keys are generated on first start. The private JWK is stored **encrypted** with Fernet under a key
  derived by HKDF-SHA256 from ``settings.secret_key``; only the public half is stored in clear.
- ``rotate`` adds a new key per algorithm. The new key is published at once and signs after
  ``lead`` (two cache periods by default, so that every process and every client's JWKS cache has
  seen it first). The old key stops signing then, and its public key stays in the JWKS until every
  token it signed has expired: refresh tokens are opaque, so the bound is the longest JWT
  lifetime, ``max(id_token_minutes, access_token_minutes)`` (plus a margin for clock skew).
- ``KeyRing`` caches the keys in the process and reloads them every ``signing_key_reload_seconds`` (or at
  once on an unknown ``kid``). ``install(database, settings)`` (``create_app``) attaches one ring to
  the application's ``Database``: every unit of work carries it in ``Session.info``, so code holding
  a session signs with ``ring_of(db).sign(claims, typ=…, alg=…)`` (tokens, logout tokens, RFC 8417
  SETs) and routes without one use ``request.app.state.keys``. No module-level ring: two
  applications in one process never sign with each other's keys.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portail.config import Settings
from portail.db import Database, utcnow
from portail.oidc.models import SigningKey

log = logging.getLogger("portail.oidc.keys")

ALGORITHMS = ("RS256", "ES256")
# Verified signatures remembered per process (``KeyRing.decode``): a tool presents the same access
# token to userinfo or introspection again and again for its lifetime.
VERIFIED_CACHE_SIZE = 4096
VERIFIED_CACHE_MAX_TOKEN = 4096  # characters; longer JWS are verified every time
SKEW = dt.timedelta(minutes=5)

SigningJWK = RSAKey | ECKey


class NoKey(Exception):
    """No usable key (none installed, or an unknown ``kid``/algorithm)."""


class BadSignature(Exception):
    """A JWT that is malformed, signed by an unknown key, or whose signature does not verify."""


# ---------------------------------------------------------------- storage


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"portail", info=b"portail.oidc.signing-keys").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _new_jwk(alg: str) -> SigningJWK:
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    raise NoKey(f"unsupported algorithm {alg}")


def generate(db: Session, settings: Settings, alg: str, *, activates_at: dt.datetime | None = None) -> SigningKey:
    """Create and store a key for ``alg``; the private half is encrypted at rest."""
    key = _new_jwk(alg)
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg}
    private = json.dumps({**key.as_dict(private=True), "kid": kid})
    row = SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=public,
        private_jwk_encrypted=_fernet(settings.secret_key).encrypt(private.encode()).decode(),
        activates_at=activates_at,
    )
    db.add(row)
    db.flush()
    return row


def _active_from(row: SigningKey) -> dt.datetime:
    return row.activates_at or row.created_at


def ensure_keys(db: Session, settings: Settings) -> list[SigningKey]:
    """Generate a key for every algorithm that has none able to sign (first start)."""
    created = []
    for alg in ALGORITHMS:
        found = db.exec(
            select(SigningKey.id).where(SigningKey.alg == alg, col(SigningKey.retired_at).is_(None)).limit(1)
        ).first()
        if found is None:
            created.append(generate(db, settings, alg))
    return created


def token_lifetime(settings: Settings) -> dt.timedelta:
    """The longest lifetime of a JWT signed by these keys (refresh tokens are not JWTs)."""
    return dt.timedelta(minutes=max(settings.id_token_minutes, settings.access_token_minutes))


def default_lead(settings: Settings) -> dt.timedelta:
    """How long after publishing a rotated key it signs: two reload periods of every process's ring."""
    return dt.timedelta(seconds=2 * settings.signing_key_reload_seconds)


def rotate(db: Session, settings: Settings, *, lead: dt.timedelta | None = None) -> list[SigningKey]:
    """Add a new key per algorithm (signing after ``lead``, by default ``default_lead``); the current
    ones retire when it activates and stay published until every token they signed has expired."""
    if lead is None:
        lead = default_lead(settings)
    now = utcnow()
    activates = now + lead
    unpublish = activates + token_lifetime(settings) + SKEW
    new_keys = []
    for alg in ALGORITHMS:
        current = db.exec(
            select(SigningKey).where(
                SigningKey.alg == alg,
                or_(col(SigningKey.retired_at).is_(None), col(SigningKey.retired_at) > activates),
            )
        ).all()
        for row in current:  # including a key a previous rotation scheduled and that did not sign yet
            row.retired_at = activates
            row.unpublish_after = unpublish
            db.add(row)
        new_keys.append(generate(db, settings, alg, activates_at=activates))
    return new_keys


def list_keys(db: Session) -> list[SigningKey]:
    return list(db.exec(select(SigningKey).order_by(col(SigningKey.created_at))))


def key_state(row: SigningKey, now: dt.datetime) -> str:
    """``signing``, ``pending`` (published, not yet signing), ``retired`` (published only) or ``expired``."""
    if row.unpublish_after is not None and row.unpublish_after <= now:
        return "expired"
    if row.retired_at is not None and row.retired_at <= now:
        return "retired"
    if _active_from(row) > now:
        return "pending"
    return "signing"


# ---------------------------------------------------------------- the in-process ring


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    active_from: dt.datetime
    retired_at: dt.datetime | None
    private: SigningJWK | None  # None when it cannot be decrypted (the secret key changed)
    public: SigningJWK
    # The ``cryptography`` key objects, taken from the JWKs once per load (``KeyRing.sign``/``decode``).
    private_native: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None
    public_native: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None = None


class KeyRing:
    """The keys of one database, cached in this process and reloaded every ``signing_key_reload_seconds``."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._public_set = KeySet([])
        self._loaded_at = -1e9
        self._missed_at = -1e9
        # token -> (header, claims) of a JWS whose signature one of the loaded keys verified
        self._verified: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    # -- loading
    def load(self) -> None:
        fernet = _fernet(self.settings.secret_key)
        now = utcnow()
        with Session(self.engine) as db:
            rows = [r for r in list_keys(db) if key_state(r, now) != "expired"]
        keys: dict[str, LoadedKey] = {}
        for row in rows:
            public = _import(row.public_jwk)
            try:
                private: SigningJWK | None = _import(json.loads(fernet.decrypt(row.private_jwk_encrypted.encode())))
            except (InvalidToken, ValueError):
                log.error(
                    "Clé %s indéchiffrable (la clé secrète a changé?) / key %s cannot be decrypted", row.kid, row.kid
                )
                private = None
            keys[row.kid] = LoadedKey(
                row.kid,
                row.alg,
                _active_from(row),
                row.retired_at,
                private,
                public,
                private.private_key if private is not None else None,
                public.public_key,
            )
        jwks = {"keys": [dict(r.public_jwk) for r in rows]}
        with self._lock:
            self._keys = keys
            self._jwks = jwks
            self._public_set = KeySet([k.public for k in keys.values()])
            self._loaded_at = time.monotonic()
            # A key that expired or disappeared no longer vouches for what it signed: verify anew.
            self._verified = {}

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.settings.signing_key_reload_seconds:
            self.load()

    # -- reading
    def jwks(self) -> dict[str, Any]:
        self._fresh()
        return self._jwks

    def signing_key(self, alg: str) -> LoadedKey:
        self._fresh()
        now = utcnow()
        candidates = [
            k
            for k in self._keys.values()
            if k.alg == alg
            and k.private is not None
            and k.active_from <= now
            and (k.retired_at is None or k.retired_at > now)
        ]
        if not candidates:
            # A key past its retirement still signs rather than nothing at all (e.g. clock skew).
            candidates = [
                k for k in self._keys.values() if k.alg == alg and k.private is not None and k.active_from <= now
            ]
        if not candidates:
            raise NoKey(f"no signing key for {alg}")
        return max(candidates, key=lambda k: k.active_from)

    def public_key(self, kid: str) -> LoadedKey | None:
        self._fresh()
        found = self._keys.get(kid)
        if found is None and time.monotonic() - self._missed_at > 1.0:
            # An unknown kid may come from a key another process just created: reload, at most once a second.
            self._missed_at = time.monotonic()
            self.load()
            found = self._keys.get(kid)
        return found

    # -- JOSE
    # Why not joserfc here: a token request signs one or two JWTs and userinfo/introspection verify
    # one, and joserfc's registries, header and key checks cost ~15-25 µs more per operation than
    # the signature itself needs. Portail's own tokens are plain compact JWS with RS256 or ES256, so
    # they are built and checked directly with ``cryptography`` (the same library joserfc calls).
    # Other JWTs (clients' assertions, their keys) still go through joserfc.
    def sign(self, claims: Mapping[str, Any], *, typ: str | None = None, alg: str = "RS256") -> str:
        key = self.signing_key(alg)
        assert key.private is not None
        header: dict[str, Any] = {"alg": alg, "kid": key.kid}
        if typ:
            header["typ"] = typ
        signing_input = _b64(_json(header)) + b"." + _b64(_json(claims))
        return (signing_input + b"." + _b64(_signature(key, signing_input))).decode("ascii")

    def decode(self, token: str, *, algorithms: tuple[str, ...] = ALGORITHMS) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify the signature only; returns (header, claims). The caller validates the claims
        (expiry, revocation: every time, cached or not).

        Why a cache: an ES256 verification is ~45 µs, about a tenth of a userinfo call, and a tool
        presents one access token many times. Only exact token strings whose signature verified
        are remembered (nothing can be forged into the cache), at most ``VERIFIED_CACHE_SIZE`` of
        them, forgotten whenever the ring reloads its keys (every ``signing_key_reload_seconds``)."""
        self._fresh()
        cached = self._verified.get(token) if isinstance(token, str) else None
        if cached is not None and cached[0]["alg"] in algorithms:
            return dict(cached[0]), dict(cached[1])
        header, claims = self._decode(token, algorithms)
        if len(token) <= VERIFIED_CACHE_MAX_TOKEN:
            verified = self._verified
            if len(verified) >= VERIFIED_CACHE_SIZE:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread evicted it
                    del verified[next(iter(verified))]
            verified[token] = (dict(header), dict(claims))
        return header, claims

    def _decode(self, token: str, algorithms: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16_000:
            raise BadSignature("not a compact JWS")
        header_part, payload_part, signature_part = token.split(".")
        try:
            header = json.loads(_unb64(header_part))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadSignature("malformed header") from exc
        if not isinstance(header, dict) or header.get("alg") not in algorithms:
            raise BadSignature("unexpected algorithm")
        if "crit" in header:  # no extension is understood here (RFC 7515 §4.1.11)
            raise BadSignature("unsupported critical header")
        kid = header.get("kid")
        key = self.public_key(kid) if isinstance(kid, str) else None
        if key is None or key.alg != header["alg"]:
            raise BadSignature("unknown key")
        try:
            signature = _unb64(signature_part)
            _verify(key, (header_part + "." + payload_part).encode("ascii"), signature)
            claims = json.loads(_unb64(payload_part))
        except (InvalidSignature, ValueError, UnicodeError) as exc:
            raise BadSignature("invalid signature or payload") from exc
        if not isinstance(claims, dict):
            raise BadSignature("the payload is not a JSON object")
        return header, claims


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(part: str) -> bytes:
    if not part.isascii() or "=" in part:
        raise ValueError("not base64url")
    raw = part.encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


_PKCS1 = padding.PKCS1v15()
_ES256_SIZE = 32  # P-256: r and s are 32 bytes each (RFC 7518 §3.4)


def _signature(key: LoadedKey, signing_input: bytes) -> bytes:
    native = key.private_native
    if isinstance(native, rsa.RSAPrivateKey):
        return native.sign(signing_input, _PKCS1, hashes.SHA256())
    if not isinstance(native, ec.EllipticCurvePrivateKey):
        raise NoKey(f"key {key.kid} cannot sign")
    der = native.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(_ES256_SIZE, "big") + s.to_bytes(_ES256_SIZE, "big")


def _verify(key: LoadedKey, signing_input: bytes, signature: bytes) -> None:
    native = key.public_native
    if isinstance(native, rsa.RSAPublicKey):
        native.verify(signature, signing_input, _PKCS1, hashes.SHA256())
        return
    if not isinstance(native, ec.EllipticCurvePublicKey) or len(signature) != 2 * _ES256_SIZE:
        raise InvalidSignature("wrong ES256 signature length")
    r, s = int.from_bytes(signature[:_ES256_SIZE], "big"), int.from_bytes(signature[_ES256_SIZE:], "big")
    native.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))


def _import(data: Mapping[str, Any]) -> SigningJWK:
    if data.get("kty") == "RSA":
        return RSAKey.import_key(dict(data))
    return ECKey.import_key(dict(data))


# ---------------------------------------------------------------- the ring of an application

_KEY = "portail.oidc.keys"


def install(database: Database, settings: Settings) -> KeyRing:
    """Generate missing keys, load them and attach the ring to ``database`` (``create_app``, and the
    commands that sign): every unit of work of that database carries it (``ring_of``)."""
    with Session(database.engine) as db:
        if ensure_keys(db, settings):
            db.commit()
    ring = KeyRing(database.engine, settings)
    ring.load()
    try:
        for alg in ALGORITHMS:
            ring.signing_key(alg)
    except NoKey:
        # The keys cannot be decrypted (the secret key changed): new ones take over at once.
        log.warning("Nouvelles clés de signature (anciennes illisibles) / new signing keys (old ones unreadable)")
        with Session(database.engine) as db:
            rotate(db, settings, lead=dt.timedelta(0))
            db.commit()
        ring.load()
    database.session_info[_KEY] = ring
    return ring


def attach(database: Database, settings: Settings) -> KeyRing:
    """Attach a ring that loads the stored keys when first used, generating and rotating nothing
    (``oidc.commands.open_database``: a command run with the wrong secret key must not replace the
    server's keys)."""
    ring = KeyRing(database.engine, settings)
    database.session_info[_KEY] = ring
    return ring


def ring_in(database: Database) -> KeyRing:
    """The ring attached to ``database`` (``NoKey`` when there is none)."""
    found = database.session_info.get(_KEY)
    if not isinstance(found, KeyRing):
        raise NoKey("no key ring attached to this database (create_app installs it)")
    return found


def ring_of(db: Session) -> KeyRing:
    """The ring of the application whose unit of work ``db`` is (``NoKey`` when there is none)."""
    found = db.info.get(_KEY)
    if not isinstance(found, KeyRing):
        raise NoKey("no key ring attached to this database (create_app installs it)")
    return found
