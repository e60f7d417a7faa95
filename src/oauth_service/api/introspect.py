"""``POST /oauth/introspect`` (RFC 7662 §2.1, §2.2): token state for authenticated confidential clients.

Any failure to authenticate is 401 ``invalid_client`` with a ``WWW-Authenticate: Basic`` challenge (§2.1 asks
for 401); failures lock the caller per client id and IP, apart from the token endpoint's count; the policy of which client may introspect which token is in ``oauth.introspection``.
"""

from fastapi import Request
from fastapi.responses import JSONResponse

from oauth_service.api.client_ip import client_ip
from oauth_service.api.forms import FORM_TYPE, client_credentials_from, read_form
from oauth_service.api.json_body import NO_STORE_HEADERS, JsonBody
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.revoke import TOKEN_FORM_SCHEMA, require_token
from oauth_service.api.route_table import RouteTable
from oauth_service.oauth.access_tokens import LocalTokenVerifier
from oauth_service.oauth.client_auth import authenticate_client
from oauth_service.oauth.errors import InvalidClientError
from oauth_service.oauth.introspection import TokenIntrospector
from oauth_service.oauth.models import Client, ClientCredentials
from oauth_service.oauth.storage import ClientStore
from oauth_service.oauth.throttling import Throttle, ThrottledClientError
from oauth_service.runtime import Runtime

routes = RouteTable(tags=["oauth"], route_class=RequestRoute)

_EXAMPLE = {
    "active": True,
    "scope": "read write",
    "client_id": "demo-web",
    "sub": "5b0c8f0e-6c1e-4c1f-9a53-3d1f1f0b7a10",
    "exp": 1767225600,
    "iat": 1767225000,
    "iss": "https://auth.example.com",
    "aud": "https://auth.example.com",
    "token_type": "Bearer",
    "jti": "9f1c1e9b0c2d4c0e8f6b2a1d3e4f5a6b",
    "username": "alice@example.com",
}


async def _authenticate(
    credentials: ClientCredentials,
    clients: ClientStore,
    throttle: Throttle,
    ip: str | None,
) -> Client:
    try:
        # Counted per (client id, IP), apart from the token endpoint: a resource server deployed with a wrong
        # secret must not lock its client out of the token endpoint or its other instances (oauth.throttling).
        return await authenticate_client(
            credentials,
            clients,
            allow_public=False,
            throttle=throttle,
            client_ip=ip,
            throttle_kind="introspection",
        )
    except ThrottledClientError:
        raise
    except InvalidClientError:
        raise InvalidClientError(used_basic=True) from None


@routes.post(
    "/oauth/introspect",
    summary="Token introspection (RFC 7662)",
    response_class=JSONResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_TYPE: {"schema": TOKEN_FORM_SCHEMA}},
        }
    },
    responses={
        200: {
            "description": 'The token\'s state; exactly {"active": false} when it is not usable',
            "content": {"application/json": {"example": _EXAMPLE}},
        },
        400: {"description": "invalid_request"},
        401: {
            "description": "invalid_client: the caller is not an authenticated confidential client"
        },
    },
)
async def introspect(request: Request) -> JSONResponse:
    """Return whether a token is active and, when it is, its claims.

    No FastAPI dependencies: resource servers call this per request, and FastAPI would solve each dependency
    node per request. No connection is taken unless a store reads the database (a cached client
    introspecting an access token of a client reads nothing).
    """
    runtime: Runtime = request.app.state.runtime
    verifier: LocalTokenVerifier = request.app.state.token_verifier
    form = await read_form(request)
    credentials = client_credentials_from(request.headers, form)
    stores = runtime.stores
    caller = await _authenticate(
        credentials, stores.clients, runtime.throttle, client_ip(request)
    )
    introspector = TokenIntrospector(
        # The process-wide verifier: its revocation list is the one ``stores.revoked_tokens`` reads, and
        # its verified-token cache is shared with /api/v1.
        access_tokens=verifier,
        refresh_tokens=stores.refresh_tokens,
        users=stores.users,
        clients=stores.clients,
        issuer=runtime.settings.issuer,
        clock=runtime.clock,
    )
    body = await introspector.introspect(
        require_token(form), form.get("token_type_hint"), caller
    )
    return JsonBody(body, extra=NO_STORE_HEADERS)
