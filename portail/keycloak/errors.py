"""The refusals of the Keycloak bridge: a French source message and its parameters, for the CLI."""

from __future__ import annotations

from typing import Any

from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError, KeycloakError


class BridgeError(Exception):
    """A Keycloak operation that cannot go on; ``message`` is French, ``params`` fill it."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


def explain(exc: KeycloakError, server_url: str, realm: str) -> BridgeError:
    """What a failed call to Keycloak means for the operator."""
    if isinstance(exc, KeycloakConnectionError):
        return BridgeError("Keycloak injoignable ou trop lent : %(url)s.", url=server_url)
    if isinstance(exc, KeycloakAuthenticationError) or exc.response_code in (401, 403):
        return BridgeError(
            "Keycloak refuse le client d’administration (%(status)s) : vérifiez son identifiant, son secret "
            "et ses rôles.",
            status=exc.response_code,
        )
    if exc.response_code == 404:
        return BridgeError("Royaume Keycloak introuvable : %(realm)s.", realm=realm)
    return BridgeError("Keycloak a répondu %(status)s.", status=exc.response_code)
