"""Discovery: RFC 8414 authorization-server metadata and OpenID Connect Discovery 1.0 §3, and the JWKS.

One document is served at both paths, so the two can never disagree. ``issuer`` is byte-identical to the
configured issuer (RFC 8414 §3.3). ``grant_types_supported`` reads the dispatcher's registry and
``response_types_supported`` the authorization endpoint's, so the document cannot drift from what the endpoints
accept. The JWK Set (RFC 7517 §5) has public members only and includes retired keys until their tokens have
expired.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from oauth_service.api.deps import RuntimeDep, StoresDep
from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.response_types import enabled_response_types
from oauth_service.oidc.claims import CLAIMS_SUPPORTED
from oauth_service.settings import Settings

router = APIRouter(tags=["discovery"])

CACHEABLE = {"Cache-Control": "public, max-age=300"}
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def build_metadata(
    settings: Settings, grant_types: frozenset[str], scopes: list[str]
) -> dict[str, Any]:
    """Return the RFC 8414 §2 metadata document."""
    issuer = settings.issuer
    implicit = "implicit" in settings.enabled_grants
    response_types = sorted(
        enabled_response_types(settings.enabled_grants), key=_response_type_order
    )
    pkce_methods = ["S256", "plain"] if settings.allow_plain_pkce else ["S256"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "scopes_supported": scopes,
        "response_types_supported": response_types,
        # Any response may be asked in the fragment (response_mode=fragment); query never carries tokens.
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": sorted(
            grant_types | ({"implicit"} if implicit else set())
        ),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "code_challenge_methods_supported": pkce_methods,
        "authorization_response_iss_parameter_supported": True,
        # OpenID Connect Discovery 1.0 §3.
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [settings.signing_alg],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }


def _response_type_order(response_type: str) -> tuple[int, str]:
    """``code`` first, then the implicit ones by length: the order clients' docs list them in."""
    return (0 if response_type == "code" else len(response_type.split()), response_type)


async def _metadata(
    request: Request, runtime: RuntimeDep, stores: StoresDep
) -> JSONResponse:
    # The token endpoint's own dispatcher: its registry is what the endpoint accepts.
    dispatcher: TokenDispatcher = request.app.state.token_dispatcher
    scopes = sorted(await stores.scopes.all())
    body = build_metadata(runtime.settings, dispatcher.grant_types, scopes)
    return JSONResponse(body, headers=CACHEABLE)


router.add_api_route(
    "/.well-known/oauth-authorization-server",
    _metadata,
    methods=["GET"],
    summary="Authorization server metadata (RFC 8414)",
)
router.add_api_route(
    "/.well-known/openid-configuration",
    _metadata,
    methods=["GET"],
    summary="The same metadata at the OpenID Connect discovery path",
)


@router.get("/.well-known/jwks.json", summary="Public signing keys (RFC 7517 JWK Set)")
async def jwks(runtime: RuntimeDep) -> JSONResponse:
    """Publish the verification keys."""
    return JSONResponse(runtime.keys.jwks(), headers=CACHEABLE)
