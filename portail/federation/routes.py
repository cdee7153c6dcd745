"""The federation's web surface on one screen: public directory and exports, member pages (hosters,
nodes, organizations, federation administration, personal API tokens) and the JSON API.

Handlers live in ``public.py`` (no login), ``pages.py`` and ``hoster_pages.py`` (members) and
``api.py`` (bearer tokens); ``install(app)`` adds the lifespan pieces (the prober and the ``groups``
claim provider) from ``portail/app.py``.
"""

from __future__ import annotations

from starlette.routing import Route

from portail.federation import api, chatons_pages, hoster_pages, node_pages, organization_admin_pages, pages, public

P = "/api/v1/federation"

routes = [
    # -- public
    Route("/federation/directory", public.directory_page, methods=["GET"], name="federation_directory"),
    Route("/federation/directory.json", public.directory_json, methods=["GET"], name="federation_directory_json"),
    Route(
        "/federation/statoolinfos/federation.properties",
        public.statool_federation,
        methods=["GET"],
        name="federation_statool",
    ),
    Route(
        "/federation/statoolinfos/hosters/{slug}.properties",
        public.statool_hoster,
        methods=["GET"],
        name="federation_statool_hoster",
    ),
    Route(
        "/federation/statoolinfos/services/{slug}.properties",
        public.statool_service,
        methods=["GET"],
        name="federation_statool_service",
    ),
    Route("/federation/charter", public.charter, methods=["GET"], name="federation_charter"),
    Route("/.well-known/nodeinfo", public.nodeinfo_links, methods=["GET"], name="nodeinfo_links"),
    Route("/nodeinfo/2.1", public.nodeinfo_document, methods=["GET"], name="nodeinfo_document"),
    # -- members
    Route("/federation", pages.home, methods=["GET"], name="federation_home"),
    Route("/federation/admin", pages.admin, methods=["GET"], name="federation_admin"),
    Route(
        "/federation/admin/hosters/{slug}",
        pages.admin_hoster_decision,
        methods=["POST"],
        name="federation_admin_hoster",
    ),
    Route(
        "/federation/admin/organizations",
        organization_admin_pages.organizations_page,
        methods=["GET", "POST"],
        name="federation_admin_organizations",
    ),
    Route(
        "/federation/admin/organizations/{slug}",
        organization_admin_pages.organization_edit,
        methods=["GET", "POST"],
        name="federation_admin_organization",
    ),
    Route(
        "/federation/admin/hosters/{slug}/governance",
        hoster_pages.hoster_governance,
        methods=["POST"],
        name="federation_admin_hoster_governance",
    ),
    Route(
        "/federation/hosters/{slug}/charter",
        hoster_pages.hoster_charter,
        methods=["POST"],
        name="federation_hoster_charter",
    ),
    Route(
        "/federation/hosters/{slug}/reapply",
        hoster_pages.hoster_reapply,
        methods=["POST"],
        name="federation_hoster_reapply",
    ),
    Route("/federation/hosters/apply", hoster_pages.apply, methods=["GET", "POST"], name="federation_apply"),
    Route("/federation/hosters/{slug}", hoster_pages.hoster_page, methods=["GET"], name="federation_hoster"),
    Route(
        "/federation/hosters/{slug}/organization",
        chatons_pages.hoster_organization,
        methods=["POST"],
        name="federation_hoster_organization",
    ),
    Route(
        "/federation/hosters/{slug}/people",
        hoster_pages.hoster_people,
        methods=["POST"],
        name="federation_hoster_people",
    ),
    Route(
        "/federation/hosters/{slug}/api-client",
        hoster_pages.hoster_api_client,
        methods=["POST"],
        name="federation_hoster_api_client",
    ),
    Route(
        "/federation/hosters/{slug}/nodes/new",
        hoster_pages.register_node,
        methods=["GET", "POST"],
        name="federation_register_node",
    ),
    Route("/federation/instances/{slug}", hoster_pages.instance_page, methods=["GET"], name="federation_instance"),
    Route(
        "/federation/instances/{slug}/edit",
        node_pages.edit_node,
        methods=["GET", "POST"],
        name="federation_instance_edit",
    ),
    *[
        Route(f"/federation/instances/{{slug}}/{path}", handler, methods=["POST"], name=f"federation_instance_{name}")
        for path, handler, name in (
            ("transfer", node_pages.offer_transfer, "transfer"),
            ("transfer/answer", node_pages.answer_transfer, "transfer_answer"),
            ("move", node_pages.request_move, "move"),
            ("move/verify", node_pages.verify_move, "move_verify"),
            ("move/cancel", node_pages.cancel_move, "move_cancel"),
            ("organization", node_pages.organization_decision, "organization"),
            ("proof", node_pages.check_proof, "proof"),
            ("pia", chatons_pages.record_pia, "pia"),
        )
    ],
    Route(
        "/federation/instances/{slug}/verify",
        hoster_pages.instance_verify,
        methods=["POST"],
        name="federation_instance_verify",
    ),
    Route(
        "/federation/instances/{slug}/decision",
        hoster_pages.instance_decision,
        methods=["POST"],
        name="federation_instance_decision",
    ),
    Route(
        "/federation/instances/{slug}/secret",
        hoster_pages.instance_secret,
        methods=["POST"],
        name="federation_instance_secret",
    ),
    Route(
        "/federation/links/{link_id:int}/decision",
        hoster_pages.link_decision,
        methods=["POST"],
        name="federation_link_decision",
    ),
    Route("/federation/links/{link_id:int}/remove", pages.link_remove, methods=["POST"], name="federation_link_remove"),
    Route("/federation/organizations/{slug}", pages.organization, methods=["GET"], name="federation_organization"),
    Route(
        "/federation/organizations/{slug}/links",
        pages.organization_link,
        methods=["POST"],
        name="federation_organization_link",
    ),
    Route(
        "/federation/organizations/{slug}/hosting",
        pages.organization_hosting,
        methods=["POST"],
        name="federation_organization_hosting",
    ),
    Route("/account/api-tokens", pages.api_tokens, methods=["GET", "POST"], name="account_api_tokens"),
    Route(
        "/account/api-tokens/{token_id:int}/revoke",
        pages.api_token_revoke,
        methods=["POST"],
        name="account_api_token_revoke",
    ),
    # -- JSON API
    Route("/api/v1/openapi.json", api.openapi_json, methods=["GET"], name="api_openapi"),
    Route(f"{P}/directory", api.directory_list, methods=["GET"], name="api_federation_directory"),
    Route(f"{P}/hosters", api.hoster_apply, methods=["POST"], name="api_federation_hoster_apply"),
    Route(f"{P}/hosters/{{slug}}", api.hoster_get, methods=["GET"], name="api_federation_hoster"),
    Route(f"{P}/hosters/{{slug}}", api.hoster_edit, methods=["PATCH"], name="api_federation_hoster_edit"),
    Route(f"{P}/hosters/{{slug}}/approve", api.hoster_approve, methods=["POST"], name="api_federation_hoster_approve"),
    Route(f"{P}/hosters/{{slug}}/refuse", api.hoster_refuse, methods=["POST"], name="api_federation_hoster_refuse"),
    *[
        Route(f"{P}/hosters/{{slug}}/{action}", handler, methods=["POST"], name=f"api_federation_hoster_{action}")
        for action, handler in api.HOSTER_ENDPOINTS.items()
    ],
    Route(f"{P}/instances", api.instance_register, methods=["POST"], name="api_federation_instance_register"),
    Route(f"{P}/instances", api.instance_list, methods=["GET"], name="api_federation_instances"),
    Route(f"{P}/instances/{{slug}}", api.instance_get, methods=["GET"], name="api_federation_instance"),
    Route(f"{P}/instances/{{slug}}", api.instance_edit, methods=["PATCH"], name="api_federation_instance_edit"),
    Route(f"{P}/instances/{{slug}}", api.instance_delete, methods=["DELETE"], name="api_federation_instance_delete"),
    Route(f"{P}/instances/{{slug}}/verify", api.instance_verify, methods=["POST"], name="api_federation_verify"),
    Route(f"{P}/instances/{{slug}}/secret", api.instance_secret, methods=["POST"], name="api_federation_secret"),
    *[
        Route(f"{P}/instances/{{slug}}/{path}", handler, methods=["POST"], name=f"api_federation_{name}")
        for path, handler, name in (
            ("transfer", api.instance_transfer, "transfer"),
            ("transfer/decision", api.instance_transfer_decision, "transfer_decision"),
            ("move", api.instance_move, "move"),
            ("move/verify", api.instance_move_verify, "move_verify"),
            ("move/cancel", api.instance_move_cancel, "move_cancel"),
            ("organization", api.instance_organization, "organization"),
            ("proof/check", api.instance_proof_check, "proof_check"),
            ("pia", api.instance_pia, "pia"),
        )
    ],
    *[
        Route(f"{P}/instances/{{slug}}/{action}", handler, methods=["POST"], name=f"api_federation_{action}")
        for action, handler in api.DECISION_ENDPOINTS.items()
    ],
    Route(f"{P}/links", api.link_request, methods=["POST"], name="api_federation_link_request"),
    Route(
        f"{P}/links/{{link_id:int}}/decision", api.link_decide, methods=["POST"], name="api_federation_link_decision"
    ),
]
