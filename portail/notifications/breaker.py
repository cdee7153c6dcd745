"""Circuit breaker per instance, kept in the instance's ``SourceState`` row so every process agrees.

closed ──(``notification_breaker_failures`` failures in a row)──▶ open ──(``retry_at`` passed)──▶ half-open
half-open ──(the one trial pull succeeds)──▶ closed;  half-open ──(it fails)──▶ open again, longer.

While open, no pull is attempted: the inbox reports the instance as unreachable at once instead of
waiting for it. Each reopening doubles the wait (exponential backoff, capped at 16× the reset time).
"Unauthorized" answers (a member's credential refused) concern one member and do not count. An
instance that answers 429 or 503 with ``Retry-After`` is left alone that long (``defer``).
"""

from __future__ import annotations

import datetime as dt

from portail.config import Settings
from portail.notifications.models import SourceState

MAX_BACKOFF = 16


def is_open(state: SourceState, now: dt.datetime) -> bool:
    """Whether pulls must be skipped now (open and not yet due for a trial)."""
    return state.breaker == "open" and state.retry_at is not None and state.retry_at > now


def claim_trial(state: SourceState, now: dt.datetime, settings: Settings) -> bool:
    """Allow a pull. An open breaker whose wait has passed lets one trial through (half-open) and
    pushes ``retry_at`` forward so that concurrent refreshes do not all try at once."""
    if state.breaker == "closed":
        return True
    if is_open(state, now):
        return False
    if state.breaker == "half-open" and state.retry_at is not None and state.retry_at > now:
        return False  # another refresh holds the trial
    state.breaker = "half-open"
    state.retry_at = now + dt.timedelta(seconds=settings.notification_breaker_reset_seconds)
    return True


def record_success(state: SourceState, latency_ms: int) -> None:
    """Close the breaker. Every member's pull from one instance ends here, on that instance's one
    row: it is written only when something changes (the ORM skips unchanged values), and the
    latency only when it moved by more than a quarter (at least 50 ms) — otherwise concurrent
    refreshes would queue on that row's lock, one update per pull."""
    state.breaker = "closed"
    state.failures = 0
    state.retry_at = None
    if state.latency_ms is None or abs(latency_ms - state.latency_ms) > max(50, state.latency_ms // 4):
        state.latency_ms = latency_ms
    state.status = "ok"
    state.last_error = ""


def record_failure(state: SourceState, now: dt.datetime, settings: Settings, status: str, message: str) -> None:
    state.failures += 1
    state.status = status
    state.last_error = message[:500]
    threshold = max(settings.notification_breaker_failures, 1)
    if state.breaker == "half-open" or state.failures >= threshold:
        factor = min(2 ** max(state.failures - threshold, 0), MAX_BACKOFF)
        state.breaker = "open"
        state.retry_at = now + dt.timedelta(seconds=settings.notification_breaker_reset_seconds * factor)


def defer(state: SourceState, now: dt.datetime, seconds: int) -> None:
    """The instance asked to be left alone (``Retry-After``): open until then, whatever the count."""
    until = now + dt.timedelta(seconds=seconds)
    if state.retry_at is None or state.retry_at < until or state.breaker == "closed":
        state.breaker = "open"
        state.retry_at = until
