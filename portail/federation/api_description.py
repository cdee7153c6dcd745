"""The OpenAPI description of the federation's JSON API (``api.py``): its scopes, schemas and
operations, registered in the shared document (``openapi.py``) served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from portail.federation import credentials, nodes, openapi
from portail.web import translate


def describe(prefix: str) -> None:
    """Register this module's operations, schemas and scopes in the OpenAPI document."""
    for name, text in credentials.SCOPES.items():
        openapi.add_scope(name, translate("en", text))
    openapi.add_tag("federation", "Federation registry: hosters, instances, links, directory")
    string = {"type": "string"}
    openapi.add_schema("HosterApplication", {
        "type": "object", "required": ["name", "contact_email", "accept_charter"],
        "properties": {"name": string, "contact_email": string, "website": string, "description": string,
                       "region": {"type": "string", "pattern": "^(0[1-9]|1[0-7])$"}, "slug": string,
                       "accept_charter": {"type": "boolean", "const": True}},
    })  # fmt: skip
    openapi.add_schema(
        "Hoster",
        {
            "type": "object",
            "properties": {
                "slug": string,
                "name": string,
                "status": {"enum": ["applied", "active", "suspended", "refused", "excluded"]},
                "charter_due_at": {"type": "string", "description": "a newer charter must be accepted by then"},
                "status_reason": string,
                "website": string,
                "contact_email": string,
                "region": string,
                "charter_version": string,
                "client_id": string,
                "people": {"type": "array", "items": {"type": "object"}},
            },
        },
    )
    openapi.add_schema("InstanceRegistration", {
        "type": "object", "required": ["hoster", "software", "name", "base_url", "scope"],
        "properties": {"hoster": string, "software": {"enum": ["nextcloud", "matrix", "passerelles", "praxis",
                                                                "discourse", "other"]},
                       "name": string, "base_url": {"type": "string", "format": "uri"},
                       "scope": {"enum": ["organization", "territorial", "central"]},
                       "organization": {"type": "string", "description": "slug of the organization or territory"},
                       "provider_identifier": {"type": "string", "default": "encommun", "description":
                                               "how the tool names Portail: Nextcloud user_oidc provider "
                                               "identifier, Synapse idp_id"},
                       "push_notifications": {"type": "boolean", "description":
                                              "the client may push notifications (client_credentials, "
                                              "scope notifications:push); default: true for passerelles, "
                                              "praxis, discourse and other, false for nextcloud and matrix"},
                       "slug": string,
                       "redirect_uris": {"type": "array", "items": string},
                       "post_logout_redirect_uris": {"type": "array", "items": string},
                       "backchannel_logout_uri": string},
    })  # fmt: skip
    openapi.add_schema(
        "Instance",
        {
            "type": "object",
            "properties": {
                "slug": string,
                "name": string,
                "software": string,
                "base_url": string,
                "scope": string,
                "status": {"enum": ["awaiting-proof", "awaiting-approval", "active", "suspended", "retired"]},
                "hoster": string,
                "organization": string,
                "health": {"enum": ["unknown", "up", "degraded", "down"]},
                "availability": {
                    "enum": ["demo", "new", "up", "degraded", "down"],
                    "description": "what members are shown: demo entry, not reached yet, up, degraded (slow or "
                    "partial answer), down after being up",
                },
                "software_version": string,
                "client_id": string,
                "redirect_uris": {"type": "array", "items": string},
                "provider_identifier": string,
                "push_notifications": {"type": "boolean"},
                **FACTS,  # CHATONS service data and where the data lives (private view)
                "challenge": {
                    "type": "object",
                    "properties": {"token": string, "url": string},
                    "description": "present while awaiting proof: serve token as text/plain at url",
                },
            },
        },
    )
    openapi.add_schema(
        "InstanceList",
        {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Instance"}},
            },
        },
    )
    openapi.add_schema("InstanceEdit", {
        "type": "object", "additionalProperties": False,
        "description": "keys left out stay as they are; the response adds 'changed' and the configuration "
                       "'snippets' (secret replaced by a placeholder)",
        "properties": {"version": {"type": "string", "description": "the instance's 'version' as read; "
                                   "another edit in between answers 409"},
                       "name": string, "description": string,
                       "login_url": {"type": "string", "description": "where 'open' starts the tool's login, "
                                     "same origin as base_url; empty clears it"},
                       "provider_identifier": {"type": "string", "description": "Nextcloud user_oidc provider "
                                               "identifier, Synapse idp_id"},
                       "nextcloud_provider_id": {"type": "string", "pattern": "^[0-9]{0,9}$", "description":
                                                 "the numeric id Nextcloud gave the provider (one-click login)"},
                       "push_notifications": {"type": "boolean"},
                       "redirect_uris": {"type": "array", "items": string},
                       "post_logout_redirect_uris": {"type": "array", "items": string},
                       "backchannel_logout_uri": string, "contact_email": string,
                       "members_only": {"type": "boolean", "description": "only members of the organizations "
                                        "served may log in (refused at /authorize); not for central instances"},
                       **FACTS},
    })  # fmt: skip
    openapi.add_schema("Reason", {"type": "object", "properties": {"reason": string}})
    openapi.add_schema("OrganizationDecision", {
        "type": "object", "required": ["decision"],
        "properties": {"decision": {"enum": ["accept", "refuse", "withdraw"]}, "reason": string},
    })  # fmt: skip
    openapi.add_schema("TransferOffer", {"type": "object", "required": ["hoster"], "properties": {"hoster": string}})
    openapi.add_schema("DomainMove", {"type": "object", "required": ["base_url"], "properties": {"base_url": string}})
    openapi.add_schema(
        "ClientConfiguration",
        {
            "type": "object",
            "properties": {
                "client_id": string,
                "client_secret": string,
                "discovery": string,
                "snippets": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"title": string, "language": string, "text": string}},
                },
            },
        },
    )
    openapi.add_schema(
        "LinkRequest",
        {
            "type": "object",
            "required": ["organization", "instance"],
            "properties": {"organization": string, "instance": string},
        },
    )
    openapi.add_schema(
        "LinkDecision",
        {"type": "object", "required": ["accept"], "properties": {"accept": {"type": "boolean"}, "reason": string}},
    )
    openapi.add_schema("Link", {"type": "object", "properties": {"id": {"type": "integer"}, "status": string}})
    openapi.add_schema(
        "Directory",
        {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "instances": {"type": "array", "items": {"type": "object"}},
                "statoolinfos": string,
            },
        },
    )
    slug = [openapi.path_parameter("slug", "identifier")]
    add = openapi.add_operation
    add(
        f"{prefix}/directory",
        "get",
        summary="Public directory of active instances",
        tag="federation",
        response="Directory",
        parameters=[
            {"name": n, "in": "query", "required": False, "schema": string}
            for n in ("region", "software", "hoster", "organization")
        ],
    )
    add(
        f"{prefix}/hosters",
        "post",
        summary="Apply as a hoster (accepting the charter)",
        tag="federation",
        scope="federation:write",
        request="HosterApplication",
        response="Hoster",
        responses={"201": "Applied"},
    )
    add(
        f"{prefix}/hosters/{{slug}}",
        "get",
        summary="Get a hoster (its people and administrators)",
        tag="federation",
        scope="federation:read",
        response="Hoster",
        parameters=slug,
    )
    for verb, text in (("approve", "Approve a hoster"), ("refuse", "Refuse a hoster (reason required, mailed)")):
        add(
            f"{prefix}/hosters/{{slug}}/{verb}",
            "post",
            summary=text,
            tag="federation",
            scope="federation:admin",
            request="Reason",
            response="Hoster",
            parameters=slug,
        )
    for verb, text, scope in (
        ("suspend", "Suspend a hoster and its active nodes (reason required; members and organizations told)",
         "federation:admin"),
        ("reinstate", "Reinstate a suspended hoster and the nodes suspended with it", "federation:admin"),
        ("exclude", "Exclude a hoster: its nodes are retired (reason required)", "federation:admin"),
        ("charter", "A hoster administrator accepts the current charter version", "federation:write"),
        ("reapply", "A refused hoster applies again (accept_charter: true)", "federation:write"),
    ):  # fmt: skip
        add(
            f"{prefix}/hosters/{{slug}}/{verb}",
            "post",
            summary=text,
            tag="federation",
            scope=scope,
            request="Reason",
            response="Hoster",
            parameters=slug,
        )
    add(
        f"{prefix}/instances",
        "post",
        summary="Register an instance; returns the challenge and where to serve it",
        tag="federation",
        scope="federation:write",
        request="InstanceRegistration",
        response="Instance",
        responses={"201": "Registered, awaiting proof"},
    )
    add(
        f"{prefix}/instances",
        "get",
        summary="Instances the caller manages",
        tag="federation",
        scope="federation:read",
        response="InstanceList",
        parameters=[{"name": n, "in": "query", "required": False, "schema": string} for n in ("hoster", "status")],
    )
    add(
        f"{prefix}/instances/{{slug}}",
        "get",
        summary="Get an instance",
        tag="federation",
        scope="federation:read",
        response="Instance",
        parameters=slug,
    )
    add(
        f"{prefix}/instances/{{slug}}",
        "patch",
        summary="Edit an instance (its client follows; the hoster is mailed)",
        tag="federation",
        scope="federation:write",
        request="InstanceEdit",
        response="Instance",
        parameters=slug,
        responses={"200": "Edited", "409": "Retired, or edited by someone else since 'version'"},
    )
    add(
        f"{prefix}/instances/{{slug}}",
        "delete",
        summary="Retire an instance (reason required, in the body or ?reason=); its base URL is released",
        tag="federation",
        scope="federation:write",
        request="Reason",
        response="Instance",
        parameters=slug,
    )
    add(
        f"{prefix}/instances/{{slug}}/verify",
        "post",
        summary="Fetch the challenge from the node",
        tag="federation",
        scope="federation:write",
        response="Instance",
        parameters=slug,
        responses={"200": "Verified, awaiting approval", "422": "Challenge absent, different or unreachable"},
    )
    for action in nodes.DECISIONS:
        add(
            f"{prefix}/instances/{{slug}}/{action}",
            "post",
            summary=f"{action.capitalize()} an instance",
            tag="federation",
            scope="federation:write" if action == "retire" else "federation:admin",
            request="Reason",
            response="Instance",
            parameters=slug,
        )
    for path, summary, request in (
        ("transfer", "Offer the instance to another active hoster (current hoster's administrator)", "TransferOffer"),
        ("transfer/decision", "The receiving hoster accepts or refuses; the offering one withdraws (accept: false)",
         "LinkDecision"),
        ("move", "Prepare a domain move: answers 'move' with the challenge to serve at the new base URL", "DomainMove"),
        ("move/verify", "Fetch the challenge at the new base URL, then switch (the old URL is released)", None),
        ("move/cancel", "Cancel a pending domain move", None),
        ("organization", "The claimed organization's administrators: accept | refuse | withdraw the node",
         "OrganizationDecision"),
    ):  # fmt: skip
        add(
            f"{prefix}/instances/{{slug}}/{path}",
            "post",
            summary=summary,
            tag="federation",
            scope="federation:write",
            request=request,
            response="Instance",
            parameters=slug,
        )
    add(  # Law 25: a node whose data leave Québec is approved only after this (approve answers 409 pia_required)
        f"{prefix}/instances/{{slug}}/pia",
        "post",
        summary="Record that the instance's privacy impact assessment (Law 25 EFVP) was done; optional 'note'",
        tag="federation",
        scope="federation:admin",
        request="Reason",
        response="Instance",
        parameters=slug,
    )
    add(
        f"{prefix}/instances/{{slug}}/secret",
        "post",
        summary="Issue (or rotate) the client secret, shown once, with configuration snippets",
        tag="federation",
        scope="federation:write",
        response="ClientConfiguration",
        parameters=slug,
    )
    add(
        f"{prefix}/links",
        "post",
        summary="Ask to link an instance to an organization or territory",
        tag="federation",
        scope="federation:write",
        request="LinkRequest",
        response="Link",
        responses={"201": "Requested; the hoster confirms"},
    )
    add(
        f"{prefix}/links/{{link_id}}/decision",
        "post",
        summary="The hoster confirms or refuses a link",
        tag="federation",
        scope="federation:write",
        request="LinkDecision",
        response="Link",
        parameters=[openapi.path_parameter("link_id", "link id")],
    )


# CHATONS service data (chatons.py) and where the data lives (residency.py): keys of InstanceEdit and Instance
_TEXT = {"type": "string"}
FACTS: dict[str, object] = {
    "registration": {"type": "string", "pattern": "^((None|Free|Member|Client);?)*$",
                     "description": "service.registration: None, Free, Member, Client (';'-separated)"},
    "install_type": {"enum": ["", "DISTRIBUTION", "PROVIDER", "PACKAGE", "TOOLING", "CLONE"]},
    "legal_url": {"type": "string", "description": "legal notice or terms of the service (else the hoster's)"},
    "guide_url": {"type": "string", "description": "user guide"},
    "software_name": {"type": "string", "description": "for software Portail does not know"},
    "software_license": {"type": "string", "description": "SPDX id, for software whose licence Portail does not know"},
    "data_location": {"type": "string", "description": "where the data is stored: CA-QC, CA-ON… or a country (FR)"},
    "backup_location": {"type": "string", "description": "where the backups are kept (same codes)"},
    "hosting_provider": {"type": "string", "description": "who runs the machines"},
    "provider_type": {"enum": ["", "HOME", "HOSTEDBAY", "HOSTEDSERVER", "OUTSOURCED"],
                      "description": "own hardware (HOME, HOSTEDBAY) or rented (HOSTEDSERVER, OUTSOURCED)"},
    "server_type": {"enum": ["", "NANO", "PHYSICAL", "VIRTUAL", "SHARED", "CLOUD"]},
    "pia_recorded_at": {**_TEXT, "readOnly": True, "description": "when the federation recorded the Law 25 PIA"},
}  # fmt: skip
