"""Ready-to-paste configuration for an instance's software, shown with its client secret (once).

- Nextcloud ``user_oidc`` (``lib/Command/UpsertProvider.php``): the exact ``occ user_oidc:provider``
  command with ``--check-bearer=1`` (Portail's JWT access tokens work on OCS/WebDAV),
  ``--unique-uid=0`` and ``--mapping-uid=preferred_username`` (the same readable user id on every
  federated Nextcloud), the display name, email and ``groups`` mappings, and group provisioning.
- Synapse: the ``oidc_providers:`` entry (``idp_id`` = the node's provider identifier, the one the
  "Lier mon compte Matrix" redirect uses) with ``backchannel_logout_enabled: true`` and
  ``user_mapping_provider`` templates (profile claims are in the ID token, integrations.md §0.6, §3.1),
  and ``sso.client_whitelist`` with Portail's Matrix link callback, so that Synapse hands the login
  token back to Portail without a confirmation page (integrations.md §3.2).
- Discourse (bundled ``discourse-openid-connect``): the site settings, as ``rails runner`` lines, and
  the notification webhook to create in Discourse's admin (API → Webhooks): Portail's URL for this
  instance, ``application/json``, the secret Portail derived for it, the "Notification" event.
- Any other software: the provider's discovery URL, the client id and secret, the URIs registered,
  and, for an instance that pushes notifications, the ``client_credentials`` grant and its scope.

When ``secret`` is ``None`` (already shown once) a placeholder stands in its place.

A members-only instance (``groups``: the slugs of the organizations it serves, from
``audience.restriction_groups``) also gets its software's own restriction where it has one:
Nextcloud ``--group-restrict-login-to-whitelist=1`` with ``--group-whitelist-regex`` (integrations.md
§10), Synapse ``attribute_requirements`` on the ``groups`` claim (``value`` or ``one_of``, with the
``groups`` scope requested). Portail refuses the others at ``/authorize`` in any case.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from portail.federation import provisioning
from portail.federation.models import Instance
from portail.web import N_

SECRET_PLACEHOLDER = "<SECRET-AFFICHÉ-UNE-SEULE-FOIS>"  # noqa: S105 - a placeholder


@dataclass(frozen=True)
class Snippet:
    title: str  # French source, translated by the page
    language: str  # shell | yaml | text
    text: str


def discovery_url(issuer: str) -> str:
    return f"{issuer}/.well-known/openid-configuration"


def nextcloud(issuer: str, instance: Instance, client_id: str, secret: str | None, groups: Sequence[str] = ()) -> str:
    args = [
        ("--clientid", client_id),
        ("--clientsecret", secret or SECRET_PLACEHOLDER),
        ("--discoveryuri", discovery_url(issuer)),
        ("--scope", "openid email profile groups"),
        ("--postlogouturi", instance.base_url.rstrip("/") + "/"),
        ("--unique-uid", "0"),
        ("--check-bearer", "1"),
        ("--send-id-token-hint", "1"),
        ("--mapping-uid", "preferred_username"),
        ("--mapping-display-name", "name"),
        ("--mapping-email", "email"),
        ("--mapping-groups", "groups"),
        ("--group-provisioning", "1"),
    ]
    if groups:
        alternatives = "|".join(re.escape(g) for g in groups)
        args += [("--group-whitelist-regex", f"/^({alternatives})$/"), ("--group-restrict-login-to-whitelist", "1")]
    lines = [f"sudo -u www-data php occ user_oidc:provider {shlex.quote(instance.provider_identifier)} \\"]
    lines += [f"  {name}={shlex.quote(value)} \\" for name, value in args[:-1]]
    lines.append(f"  {args[-1][0]}={shlex.quote(args[-1][1])}")
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


MATRIX_LINK_CALLBACK = "/notifications/link/matrix/callback"  # notifications.linking.CALLBACK (a higher package)


def _requirement(groups: Sequence[str]) -> list[str]:
    if not groups:
        return []
    if len(groups) == 1:
        return ["    attribute_requirements:", f"      - attribute: groups\n        value: {_q(groups[0])}"]
    return ["    attribute_requirements:", f"      - attribute: groups\n        one_of: {json.dumps(list(groups))}"]


def synapse(issuer: str, instance: Instance, client_id: str, secret: str | None, groups: Sequence[str] = ()) -> str:
    idp_id, _exposed = provisioning.synapse_idp(instance)
    scopes = '["openid", "profile", "email", "groups"]' if groups else '["openid", "profile", "email"]'
    return "\n".join(
        [
            "# Retour de liaison Matrix de Portail : ajoutez-le à votre sso.client_whitelist s’il existe déjà.",
            "# Portail's Matrix link callback: add it to your sso.client_whitelist if you already have one.",
            "# Portail sur une adresse privée ou locale ? Synapse n’appelle sa passerelle de notifications que si",
            '# ip_range_whitelist la contient (ex. ip_range_whitelist: ["10.0.0.5"]).',
            "# Portail on a private or loopback address? Synapse calls its push gateway only if",
            '# ip_range_whitelist contains it (e.g. ip_range_whitelist: ["10.0.0.5"]).',
            "sso:",
            "  client_whitelist:",
            f"    - {_q(issuer.rstrip('/') + MATRIX_LINK_CALLBACK)}",
            "oidc_providers:",
            f"  - idp_id: {_q(idp_id)}",
            '    idp_name: "En commun"',
            f"    issuer: {_q(issuer)}",
            f"    client_id: {_q(client_id)}",
            f"    client_secret: {_q(secret or SECRET_PLACEHOLDER)}",
            "    client_auth_method: client_secret_basic",
            f"    scopes: {scopes}",
            "    pkce_method: auto",
            "    allow_existing_users: true",
            "    backchannel_logout_enabled: true",
            "    user_mapping_provider:",
            "      config:",
            '        subject_template: "{{ user.sub }}"',
            '        localpart_template: "{{ user.preferred_username }}"',
            '        display_name_template: "{{ user.name }}"',
            '        email_template: "{{ user.email }}"',
            "        confirm_localpart: false",
            *_requirement(groups),
            "",
        ]
    )


def discourse(issuer: str, instance: Instance, client_id: str, secret: str | None) -> str:
    settings = [
        ("openid_connect_enabled", True),
        ("openid_connect_discovery_document", discovery_url(issuer)),
        ("openid_connect_client_id", client_id),
        ("openid_connect_client_secret", secret or SECRET_PLACEHOLDER),
        ("openid_connect_authorize_scope", "openid profile email"),
        ("openid_connect_use_pkce", True),
        ("openid_connect_rp_initiated_logout", True),
        ("openid_connect_rp_initiated_logout_redirect", instance.base_url.rstrip("/") + "/"),
    ]
    body = "; ".join(f"SiteSetting.{name} = {json.dumps(value, ensure_ascii=False)}" for name, value in settings)
    # Let Portail's notification hub obtain members' User API keys (notifications/user_api_keys.py): add
    # its callback to the allowed redirects, keeping the ones already there.
    callback = json.dumps(f"{issuer.rstrip('/')}/notifications/link/discourse/callback*")
    body += (
        "; SiteSetting.allowed_user_api_auth_redirects = "
        f'(SiteSetting.allowed_user_api_auth_redirects.split("|") | [{callback}]).join("|")'
    )
    return f"cd /var/discourse && ./launcher enter app\nrails runner {shlex.quote(body)}\n"


def discourse_webhook(issuer: str, instance: Instance, webhook_secret: str) -> str:
    lines = [
        "# Admin → API → Webhooks → New webhook ({base}/admin/api/web_hooks/new)",
        f"Payload URL = {issuer.rstrip('/')}/api/v1/notifications/discourse/{instance.slug}",
        "Content Type = application/json",
        f"Secret = {webhook_secret}",
        "Which events = Select individual events → Notification event (notification_created)",
        "Check TLS certificate of payload url = on",
        "Active = on",
    ]
    return "\n".join(lines).replace("{base}", instance.base_url.rstrip("/")) + "\n"


def generic(issuer: str, instance: Instance, client_id: str, secret: str | None) -> str:
    lines = [
        f"issuer = {issuer}",
        f"discovery = {discovery_url(issuer)}",
        f"client_id = {client_id}",
        f"client_secret = {secret or SECRET_PLACEHOLDER}",
        (
            f"token_endpoint_auth_method = private_key_jwt (jwks_uri = {instance.extra['jwks_uri']})"
            if instance.extra.get("jwks_uri")
            else "token_endpoint_auth_method = client_secret_basic (client_secret_post)"
        ),
        "scopes = openid profile email groups offline_access",
        *[f"redirect_uri = {u}" for u in instance.redirect_uris],
        *[f"post_logout_redirect_uri = {u}" for u in instance.post_logout_redirect_uris],
    ]
    if instance.push_notifications:
        lines += [
            f"push_grant = client_credentials (scope={provisioning.PUSH_SCOPE})",
            f"push_api = {issuer.rstrip('/')}/api/v1/notifications",
        ]
    if instance.backchannel_logout_uri:
        lines.append(f"backchannel_logout_uri = {instance.backchannel_logout_uri}")
    return "\n".join(lines) + "\n"


def for_instance(
    issuer: str,
    instance: Instance,
    client_id: str,
    secret: str | None,
    groups: Sequence[str] = (),
    *,
    webhook_secret: str | None = None,
) -> list[Snippet]:
    """The snippets to show for this instance's software (the generic one always comes last)."""
    found: list[Snippet] = []
    if instance.software == "nextcloud":
        found.append(
            Snippet(
                N_("Nextcloud (application user_oidc) : commande occ"),
                "shell",
                nextcloud(issuer, instance, client_id, secret, groups),
            )
        )
    elif instance.software == "matrix":
        found.append(
            Snippet(N_("Synapse : homeserver.yaml"), "yaml", synapse(issuer, instance, client_id, secret, groups))
        )
    elif instance.software == "discourse":
        found.append(
            Snippet(N_("Discourse : réglages du site"), "shell", discourse(issuer, instance, client_id, secret))
        )
        if webhook_secret:
            found.append(
                Snippet(
                    N_("Discourse : webhook des notifications (Admin → API → Webhooks)"),
                    "text",
                    discourse_webhook(issuer, instance, webhook_secret),
                )
            )
    found.append(Snippet(N_("Paramètres OpenID Connect"), "text", generic(issuer, instance, client_id, secret)))
    return found
