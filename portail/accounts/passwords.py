"""Password policy and hashing (argon2id, via argon2-cffi).

Hashing runs in a bounded thread pool: each argon2 verify holds ``argon2_memory_cost_kib`` of RAM
and argon2-cffi releases the GIL, so the pool size caps both memory and CPU. A hash made with
older parameters is re-hashed at the next successful login (``needs_rehash``).
"""

from __future__ import annotations

import asyncio
import gzip
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The hashing threads, started on first use (and again after ``close``, e.g. a lifespan restart)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2")
        return self._pool

    def hash(self, password: str) -> str:
        return self.hasher.hash(_normalize(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self.dummy_hash, _normalize(password)) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.verify, stored_hash, password)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
