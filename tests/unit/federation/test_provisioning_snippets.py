"""Client URIs derived from each software (integrations.md §1.1, §3.1, §5) and the configuration
snippets shown with the secret: the exact ``occ user_oidc:provider`` command, the Synapse
``oidc_providers`` YAML, the Discourse settings."""

from __future__ import annotations

import shlex

import pytest
import yaml

from portail.federation import provisioning, snippets
from portail.federation.models import Instance
from portail.federation.rules import FederationError


def test_nextcloud_uses_user_oidc_code_and_backchannel_routes() -> None:
    uris = provisioning.derive("nextcloud", "https://nuage.example/", provider_identifier="encommun")
    assert uris.redirect_uris == [
        "https://nuage.example/apps/user_oidc/code",
        "https://nuage.example/index.php/apps/user_oidc/code",
    ]
    assert uris.backchannel_logout_uri == "https://nuage.example/index.php/apps/user_oidc/backchannel-logout/encommun"
    assert uris.post_logout_redirect_uris == ["https://nuage.example/"]


def test_nextcloud_in_a_subfolder_keeps_its_path() -> None:
    uris = provisioning.derive("nextcloud", "https://example.org/cloud", provider_identifier="portail")
    assert uris.redirect_uris[0] == "https://example.org/cloud/apps/user_oidc/code"
    assert (
        uris.backchannel_logout_uri == "https://example.org/cloud/index.php/apps/user_oidc/backchannel-logout/portail"
    )


def test_synapse_uses_its_oidc_callback_and_backchannel_endpoint() -> None:
    uris = provisioning.derive("matrix", "https://matrix.example")
    assert uris.redirect_uris == ["https://matrix.example/_synapse/client/oidc/callback"]
    assert uris.backchannel_logout_uri == "https://matrix.example/_synapse/client/oidc/backchannel_logout"
    assert uris.post_logout_redirect_uris == []


def test_discourse_uses_the_omniauth_oidc_callback_without_backchannel() -> None:
    uris = provisioning.derive("discourse", "https://forum.example")
    assert uris.redirect_uris == ["https://forum.example/auth/oidc/callback"]
    assert uris.backchannel_logout_uri is None


def test_other_software_needs_uris_on_the_same_origin() -> None:
    with pytest.raises(FederationError):
        provisioning.derive("other", "https://app.example")
    ok = provisioning.derive("praxis", "https://app.example", redirect_uris=["https://app.example/auth/cb"])
    assert ok.redirect_uris == ["https://app.example/auth/cb"]
    for bad in (
        "https://evil.example/cb",
        "http://app.example/cb",
        "https://app.example:8443/cb",
        "https://app.example/cb#frag",
    ):
        with pytest.raises(FederationError):
            provisioning.derive("other", "https://app.example", redirect_uris=[bad])
    with pytest.raises(FederationError):
        provisioning.derive(
            "other",
            "https://app.example",
            redirect_uris=["https://app.example/cb"],
            backchannel_logout_uri="https://elsewhere.example/logout",
        )


def test_provider_identifier_is_restricted_to_safe_characters() -> None:
    assert provisioning.check_provider_identifier("") == "encommun"
    with pytest.raises(FederationError):
        provisioning.check_provider_identifier("en commun/../x")


def _instance(software: str, base: str = "https://nuage.example") -> Instance:
    uris = provisioning.derive(software, base, redirect_uris=[f"{base}/cb"])
    return Instance(
        slug="nuage",
        name="Nuage",
        software=software,
        base_url=base,
        provider_identifier="encommun",
        redirect_uris=uris.redirect_uris,
        backchannel_logout_uri=uris.backchannel_logout_uri,
    )


def test_nextcloud_snippet_is_the_exact_occ_command() -> None:
    text = snippets.nextcloud("https://portail.example", _instance("nextcloud"), "nuage", "s3cr'et")
    words = shlex.split(text.replace("\\\n", " "))
    assert words[:6] == ["sudo", "-u", "www-data", "php", "occ", "user_oidc:provider"]
    assert words[6] == "encommun"
    options = dict(w.split("=", 1) for w in words[7:])
    assert options == {
        "--clientid": "nuage",
        "--clientsecret": "s3cr'et",
        "--discoveryuri": "https://portail.example/.well-known/openid-configuration",
        "--scope": "openid email profile groups",
        "--postlogouturi": "https://nuage.example/",
        "--unique-uid": "0",
        "--check-bearer": "1",
        "--send-id-token-hint": "1",
        "--mapping-uid": "preferred_username",
        "--mapping-display-name": "name",
        "--mapping-email": "email",
        "--mapping-groups": "groups",
        "--group-provisioning": "1",
    }


def test_synapse_snippet_is_valid_yaml_with_backchannel_and_mapping_templates() -> None:
    text = snippets.synapse("https://portail.example", _instance("matrix"), "matrix", 'se"cret')
    provider = yaml.safe_load(text)["oidc_providers"][0]
    assert provider["issuer"] == "https://portail.example"
    assert (provider["client_id"], provider["client_secret"]) == ("matrix", 'se"cret')
    assert provider["backchannel_logout_enabled"] is True
    assert provider["scopes"] == ["openid", "profile", "email"]
    mapping = provider["user_mapping_provider"]["config"]
    assert mapping["localpart_template"] == "{{ user.preferred_username }}"
    assert mapping["display_name_template"] == "{{ user.name }}"
    assert mapping["email_template"] == "{{ user.email }}"
    # Synapse's push client refuses private addresses unless whitelisted (integrations.md, httppusher)
    assert "ip_range_whitelist" in text and "ip_range_whitelist" not in yaml.safe_load(text)


def test_discourse_snippet_sets_the_plugin_settings() -> None:
    text = snippets.discourse("https://portail.example", _instance("discourse", "https://forum.example"), "forum", "x")
    body = shlex.split(text.splitlines()[1])[2]
    for setting in (
        "SiteSetting.openid_connect_enabled = true",
        'SiteSetting.openid_connect_discovery_document = "https://portail.example/.well-known/openid-configuration"',
        'SiteSetting.openid_connect_client_id = "forum"',
        'SiteSetting.openid_connect_client_secret = "x"',
        'SiteSetting.openid_connect_rp_initiated_logout_redirect = "https://forum.example/"',
        'SiteSetting.allowed_user_api_auth_redirects = (SiteSetting.allowed_user_api_auth_redirects.split("|")'
        ' | ["https://portail.example/notifications/link/discourse/callback*"]).join("|")',
    ):
        assert setting in body


def test_a_secret_already_shown_is_replaced_by_a_placeholder() -> None:
    for snippet in snippets.for_instance("https://portail.example", _instance("nextcloud"), "nuage", None):
        assert snippets.SECRET_PLACEHOLDER in snippet.text
    titles = [s.title for s in snippets.for_instance("https://p.example", _instance("other"), "x", "y")]
    assert titles == ["Paramètres OpenID Connect"]


def test_synapse_snippet_uses_the_nodes_idp_id_and_whitelists_portails_link_callback() -> None:
    """integrations.md §3.2, §10: Synapse exposes ``idp_id: x`` as ``oidc-x`` and hands a login token
    back to ``redirectUrl`` only when it starts with an entry of ``sso.client_whitelist``."""
    instance = _instance("matrix")
    instance.provider_identifier = "quartier"
    config = yaml.safe_load(snippets.synapse("https://portail.example", instance, "matrix", "s"))
    assert config["oidc_providers"][0]["idp_id"] == "quartier"
    assert config["sso"]["client_whitelist"] == ["https://portail.example/notifications/link/matrix/callback"]
    assert provisioning.synapse_idp(instance) == ("quartier", "oidc-quartier")
    instance.provider_identifier = "oidc"  # Synapse's one unprefixed id
    assert provisioning.synapse_idp(instance) == ("oidc", "oidc")


@pytest.mark.parametrize(
    ("software", "pushes"),
    [("passerelles", True), ("praxis", True), ("discourse", True), ("other", True), ("nextcloud", False),
     ("matrix", False)],
)  # fmt: skip
def test_a_client_gets_client_credentials_and_the_push_scope_when_its_instance_pushes(
    software: str, pushes: bool
) -> None:
    assert provisioning.push_setting(None, software) is pushes
    assert provisioning.push_setting("", software) is pushes
    instance = _instance(software)
    instance.push_notifications = provisioning.push_setting(None, software)
    grants, scope = provisioning.access(instance)
    assert ("client_credentials" in grants) is pushes
    assert ("notifications:push" in scope.split()) is pushes
    assert {"authorization_code", "refresh_token"} <= set(grants) and "openid" in scope.split()
    generic = snippets.generic("https://p.example", instance, "x", "y")
    assert ("scope=notifications:push" in generic) is pushes


def test_push_setting_is_explicit_or_refused() -> None:
    assert provisioning.push_setting(False, "passerelles") is False
    assert provisioning.push_setting("true", "matrix") is True
    with pytest.raises(FederationError):
        provisioning.push_setting("peut-être", "matrix")
