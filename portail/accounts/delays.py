"""Delays said in words, in the member's language, with correct plurals ("1 seconde", "3 minutes",
"in 1 hour"): Babel's ``format_timedelta``. Used by every "try again in …" message."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_timedelta


def in_words(seconds: int | float, locale: str) -> str:
    """``seconds`` as the largest whole unit a person would say (never rounded down to nothing)."""
    return format_timedelta(
        dt.timedelta(seconds=max(1, round(seconds))), threshold=1.0, locale=locale.replace("-", "_")
    )
