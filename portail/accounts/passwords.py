"""Password policy and hashing (argon2id, via argon2-cffi), and the legacy formats of imported members.

Hashing runs in a bounded thread pool: each argon2 verify holds ``argon2_memory_cost_kib`` of RAM
and argon2-cffi releases the GIL, so the pool size caps both memory and CPU. A hash made with
older parameters is re-hashed at the next successful login (``needs_rehash``).

Members imported from another tool (``portail users import``, see ``docs/import-format.md``) keep
the hash that tool made until their first login: ``verify`` checks it in its own format, through
``libpass`` (the maintained passlib) and ``bcrypt``, then ``needs_rehash`` says yes and the login
stores an argon2id hash in its place. ``legacy_scheme`` is what the import asks before it stores a
hash: a format not listed in ``LEGACY_SCHEMES``, or a truncated hash, is refused there, never
stored as something that can never log in.

A *remote* hash (``{PREFIX}identifier``) is a password another service still holds, such as a
Keycloak realm whose Admin API never reveals hashes: the package that owns the prefix registers a
verifier with ``register_remote``; ``verify_async`` asks it once, and raises ``CheckUnavailable``
when that service cannot answer (the login then counts no failure).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import unicodedata
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import bcrypt
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from passlib.context import CryptContext
from passlib.handlers.phpass import phpass
from passlib.utils.binary import h64

from portail.config import Settings
from portail.web import N_

COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


@cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def password_problem(password: str, settings: Settings) -> str | None:
    """The French source message explaining why a password is refused, or None when acceptable."""
    if len(password) < settings.password_min_length:
        return N_("Le mot de passe doit compter au moins %(min)s caractères.")
    if len(password) > settings.password_max_length:
        return N_("Le mot de passe doit compter au plus %(max)s caractères.")
    if password.strip().lower() in _common_passwords() or len(set(password)) < 3:
        return N_("Ce mot de passe est trop courant. Choisissez-en un autre.")
    return None


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFC", password)


class drupal7_sha512(phpass):  # type: ignore[misc]
    """Drupal 7's ``$S$`` hashes: phpass's portable scheme with SHA-512, cut to 55 characters
    (``_password_crypt`` in Drupal 7's ``includes/password.inc``). The salt, rounds and encoding
    are passlib's phpass; only the digest differs."""

    name = "drupal7_sha512"
    default_ident = "$S$"
    ident_values = ("$S$",)
    ident_aliases: dict[str, str] = {}
    checksum_size = 43
    default_rounds = 15

    def _calc_checksum(self, secret: str | bytes) -> str:
        data = secret.encode("utf-8") if isinstance(secret, str) else secret
        digest = hashlib.sha512(self.salt.encode("ascii") + data).digest()
        for _ in range(1 << self.rounds):
            digest = hashlib.sha512(digest + data).digest()
        return str(h64.encode_bytes(digest).decode("ascii")[: self.checksum_size])


# The formats an imported hash may come in (argon2 itself is verified by argon2-cffi, any parameters;
# WordPress 6.8's "$wp$2y$…" is bcrypt of a pre-hash, see ``_wordpress_prehash``).
LEGACY_SCHEMES: tuple[str, ...] = (
    "bcrypt",  # $2a$ $2b$ $2y$: PHP password_hash, Rails/Devise, Laravel, Nextcloud (version 1)
    "phpass",  # $P$ $H$: WordPress, phpBB, Drupal 7 accounts migrated from Drupal 6
    "drupal7_sha512",  # $S$
    "django_pbkdf2_sha256",  # pbkdf2_sha256$…
    "django_argon2",  # argon2$argon2id$…
    "django_bcrypt_sha256",  # bcrypt_sha256$…
    "ldap_salted_sha1",  # {SSHA}
    "ldap_salted_sha512",  # {SSHA512}
    "sha512_crypt",  # $6$
)
# Total lengths of formats whose parser accepts a shorter (truncated) checksum.
_EXACT_LENGTHS = {"phpass": 34, "drupal7_sha512": 55}
# The most work one login may cost: an imported hash asking for more (a login would hold a hashing
# thread for minutes, or gigabytes of memory) is refused at import. Log2 rounds for bcrypt/phpass.
_MAX_ROUNDS = {
    "bcrypt": 16,
    "django_bcrypt_sha256": 16,
    "phpass": 20,
    "drupal7_sha512": 20,
    "django_pbkdf2_sha256": 5_000_000,
    "sha512_crypt": 2_000_000,
}
_ARGON2_MAX_MEMORY_KIB = 1 << 20
_ARGON2_MAX_TIME_COST = 64
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$")


@cache
def _legacy_context() -> CryptContext:
    return CryptContext(schemes=[drupal7_sha512 if name == "drupal7_sha512" else name for name in LEGACY_SCHEMES])


def legacy_scheme(stored_hash: str) -> str | None:
    """The name of the format of an importable hash (``argon2`` or one of ``LEGACY_SCHEMES``), or None
    when it is unknown, truncated, malformed, or costs more than a login can afford."""
    if stored_hash.startswith(_ARGON2_PREFIXES):
        return "argon2" if _argon2_parses(stored_hash) else None
    if stored_hash.startswith("$wp$2"):  # WordPress 6.8+: "$wp" + bcrypt of a pre-hash (see _wordpress_prehash)
        return "wordpress_bcrypt" if legacy_scheme(stored_hash[3:]) == "bcrypt" else None
    if stored_hash.startswith("argon2$"):  # Django's argon2: its own prefix, then a whole argon2 hash
        return "django_argon2" if _argon2_parses(stored_hash.removeprefix("argon2")) else None
    try:
        handler: Any = _legacy_context().identify(stored_hash, resolve=True, required=False)
        if handler is None:
            return None
        parsed = handler.from_string(stored_hash)
    except (ValueError, TypeError):
        return None
    name = str(handler.name)
    if not getattr(parsed, "checksum", None) or len(stored_hash) != _EXACT_LENGTHS.get(name, len(stored_hash)):
        return None
    if int(getattr(parsed, "rounds", 0) or 0) > _MAX_ROUNDS.get(name, 1 << 62):
        return None
    return name


def _wordpress_prehash(password: str) -> bytes:
    """WordPress 6.8's ``wp_check_password``: base64(HMAC-SHA-384(password, key "wp-sha384"))."""
    return base64.b64encode(hmac.new(b"wp-sha384", password.encode("utf-8"), hashlib.sha384).digest())


def _argon2_parses(stored_hash: str) -> bool:
    try:
        parameters = extract_parameters(stored_hash)
    except (InvalidHashError, ValueError):
        return False
    if parameters.memory_cost > _ARGON2_MAX_MEMORY_KIB or parameters.time_cost > _ARGON2_MAX_TIME_COST:
        return False
    # A truncated hash still parses (its tag is just shorter): accept only the tag lengths tools use.
    return parameters.hash_len in (16, 24, 32, 48, 64) and parameters.salt_len >= 8


class CheckUnavailable(Exception):
    """The service that still holds a member's password cannot answer now (not a wrong password)."""


RemoteVerifier = Callable[[str, str], Awaitable[bool]]


class Passwords:
    """argon2id hashing with the configured parameters, off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.workers = settings.password_hash_workers
        self._pool: ThreadPoolExecutor | None = None
        # A hash of a random password, verified when the account does not exist, so that an unknown
        # email costs the same time as a wrong password.
        self.dummy_hash = self.hasher.hash("portail-dummy-password-for-timing")
        self._remote: dict[str, RemoteVerifier] = {}

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The hashing threads, started on first use (and again after ``close``, e.g. a lifespan restart)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2")
        return self._pool

    def hash(self, password: str) -> str:
        return self.hasher.hash(_normalize(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password`` against an argon2 hash, or a legacy one in its own format (see ``needs_rehash``)."""
        if stored_hash and not stored_hash.startswith("$argon2"):
            return self._verify_legacy(stored_hash, password)
        try:
            return self.hasher.verify(stored_hash or self.dummy_hash, _normalize(password)) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _verify_legacy(self, stored_hash: str, password: str) -> bool:
        """The old tool hashed the password as the browser sent it: try it as typed, then NFC-normalized."""
        scheme = legacy_scheme(stored_hash)
        if scheme is None:
            self.verify(None, password)  # same cost as an unknown account
            return False
        forms = dict.fromkeys((password, _normalize(password)))
        return any(self._legacy_matches(scheme, stored_hash, form) for form in forms)

    @staticmethod
    def _legacy_matches(scheme: str, stored_hash: str, password: str) -> bool:
        try:
            if scheme == "wordpress_bcrypt":
                return bcrypt.checkpw(_wordpress_prehash(password), stored_hash[3:].encode("ascii"))
            return bool(_legacy_context().verify(password, stored_hash))
        except (ValueError, TypeError):  # e.g. a password bcrypt cannot take
            return False

    def register_remote(self, prefix: str, verifier: RemoteVerifier) -> None:
        """Let ``verifier(identifier, password)`` check hashes written ``{prefix}identifier``."""
        self._remote[prefix] = verifier

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        """``verify`` off the event loop; a remote hash asks its service (``CheckUnavailable`` when it is down)."""
        for prefix, verifier in self._remote.items():
            if stored_hash and stored_hash.startswith(prefix):
                return await verifier(stored_hash.removeprefix(prefix), password)  # as the member typed it
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.verify, stored_hash, password)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
