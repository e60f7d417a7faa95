"""``GET``/``POST /oauth/userinfo`` (OpenID Connect Core §5.3): the signed-in user's claims, by the token's scope.

The access token is verified by the process-wide verifier of ``/api/v1`` (``app.state.token_verifier``: signature,
``iss``, ``aud``, expiry, the revocation list and the user and client cut-offs, with its verified-token cache),
must carry ``openid`` and stand for a user who is still active. It is read from the ``Authorization`` header
(RFC 6750 §2.1) or, on ``POST``, from an ``access_token`` form field (§2.2); never from the query (§2.3 is
refused here), and one method per request. Errors are RFC 6750 §3 challenges. The body is
``oidc.claims.released_claims``, the mapping the ID token uses too, so both say the same ``sub`` and claims.

On the hot-route path (``RequestRoute``): one token verification, usually a cache hit, and the user's profile,
usually from the process's profile cache (``oauth.profile_cache``), else one read by primary key.
"""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from oauth_service.api.bearer import OAUTH2_SCHEME
from oauth_service.api.forms import FORM_TYPE, read_form
from oauth_service.api.json_body import NO_STORE_HEADERS, JsonBody
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.route_table import RouteTable
from oauth_service.oauth.access_tokens import LocalTokenVerifier
from oauth_service.oauth.errors import InsufficientScopeError, InvalidTokenError
from oauth_service.observability.logs import bind_client_id
from oauth_service.oidc.claims import OPENID_SCOPE, released_claims
from oauth_service.resource_server.verification import (
    InvalidBearerRequestError,
    bearer_token_of,
)
from oauth_service.runtime import Runtime

routes = RouteTable(tags=["OpenID Connect"], route_class=RequestRoute)

_QUERY_TOKEN = b"access_token="


def _refuse_query_token(request: Request) -> None:
    """RFC 6750 §2.3: a token in the URL ends up in logs and browser history; refused, not read."""
    query: bytes = request.scope.get("query_string", b"")
    if query and (query.startswith(_QUERY_TOKEN) or b"&" + _QUERY_TOKEN in query):
        raise InvalidBearerRequestError(
            "Send the access token in the Authorization header, not in the query."
        )


def _is_form(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0]
    return media_type.strip().lower() == FORM_TYPE


async def _access_token(request: Request) -> str:
    """The bearer token of the header or, on POST, of the form body (RFC 6750 §2.1, §2.2)."""
    _refuse_query_token(request)
    authorization = request.headers.getlist("authorization")
    if request.method == "POST" and _is_form(request):
        in_body = (await read_form(request)).get("access_token")
        if in_body is not None:
            if authorization:
                raise InvalidBearerRequestError(
                    "Send the access token by one method only."
                )
            return bearer_token_of([f"Bearer {in_body}"])
    return bearer_token_of(authorization)


async def userinfo(request: Request) -> JSONResponse:
    """Return the claims the token's scope releases about its user (§5.3.2); unset claims are omitted."""
    verifier: LocalTokenVerifier = request.app.state.token_verifier
    access = await verifier.verify(await _access_token(request))
    bind_client_id(access.client_id)
    if access.is_client_token:
        raise InvalidTokenError(
            "The access token was not issued for a user.", detail="client token"
        )
    if OPENID_SCOPE not in access.scopes:
        raise InsufficientScopeError(scope=OPENID_SCOPE)
    runtime: Runtime = request.app.state.runtime
    profile = await runtime.profiles.profile(
        access.subject, runtime.stores.users.profile
    )
    if profile is None:
        raise InvalidTokenError(detail="the token's user is gone or inactive")
    return JsonBody(released_claims(profile, access.scopes), extra=NO_STORE_HEADERS)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The user's claims (OpenID Connect Core §5.3.2)",
        "content": {
            "application/json": {
                "example": {
                    "sub": "4b0c1f9e-7d7a-4f5e-9a57-0c1e2d3f4a5b",
                    "name": "Alice Liddell",
                    "email": "alice@example.com",
                    "email_verified": True,
                }
            }
        },
    },
    400: {"description": "The token was sent in the query, or by two methods"},
    401: {"description": "Missing, invalid, expired or revoked token, or no user"},
    403: {"description": "The token lacks the openid scope"},
}
_FORM_BODY = {
    "required": False,
    "content": {
        FORM_TYPE: {
            "schema": {
                "type": "object",
                "properties": {
                    "access_token": {
                        "type": "string",
                        "format": "password",
                        "description": "RFC 6750 §2.2, instead of the Authorization header",
                    }
                },
            }
        }
    },
}
# Either scheme of /docs: the OAuth2 flows with openid ticked, or the OpenID Connect one (``api.docs``).
_SECURITY = {
    "security": [
        {OAUTH2_SCHEME.scheme_name: ["openid"]},
        {"OpenIdConnect": ["openid"]},
    ]
}

routes.add_api_route(
    "/oauth/userinfo",
    userinfo,
    methods=["GET"],
    summary="UserInfo",
    response_class=JSONResponse,
    responses=_RESPONSES,
    openapi_extra=_SECURITY,
)
routes.add_api_route(
    "/oauth/userinfo",
    userinfo,
    methods=["POST"],
    summary="UserInfo (POST)",
    response_class=JSONResponse,
    responses=_RESPONSES,
    openapi_extra={**_SECURITY, "requestBody": _FORM_BODY},
)
