"""The error every consent operation raises when it refuses: a French source message and its parameters.

Routes translate it for the member (``_(request, exc.message, **exc.params)``); the CLI prints it
with ``exc.english()`` appended.
"""

from __future__ import annotations

from portail.web import N_, translate

__all__ = ["N_", "ConsentError"]


class ConsentError(Exception):
    """A refused operation; ``status`` is the HTTP status a page answers with."""

    def __init__(self, message: str, *, status: int = 400, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
        self.status = status

    def text(self, locale: str) -> str:
        return translate(locale, self.message, **self.params)

    def bilingual(self) -> str:
        """``« français » / English`` for the command line."""
        return f"{self.text('fr-CA')} / {self.text('en')}"
