"""``POST /oauth/token`` (RFC 6749 §3.2, §5.1, §5.2): parse, dispatch, commit, respond ``no-store``.

The router catches nothing: every failure is an ``OAuthError`` rendered by ``api.errors``. The grant's store
operations have committed when ``dispatch`` returns, so a token is never sent for rows that were not stored.
"""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from oauth_service.api.client_ip import client_ip
from oauth_service.api.forms import FORM_TYPE, client_credentials_from, read_form
from oauth_service.api.json_body import NO_STORE_HEADERS, JsonBody
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.route_table import RouteTable
from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.models import TokenRequest
from oauth_service.observability.logs import audit, bind_client_id
from oauth_service.observability.metrics import record_token_issued

routes = RouteTable(tags=["oauth"], route_class=RequestRoute)

_SECRET = {"type": "string", "format": "password"}
_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": [
                "client_credentials",
                "password",
                "refresh_token",
                "authorization_code",
            ],
        },
        "email": {"type": "string", "description": "password grant: the user's email"},
        "username": {"type": "string", "description": "password grant: alias of email"},
        "password": {**_SECRET, "description": "password grant"},
        "refresh_token": {**_SECRET, "description": "refresh_token grant"},
        "code": {**_SECRET, "description": "authorization_code grant"},
        "redirect_uri": {"type": "string", "description": "authorization_code grant"},
        "code_verifier": {**_SECRET, "description": "authorization_code grant (PKCE)"},
        "scope": {"type": "string", "description": "space-separated; optional"},
        "client_id": {
            "type": "string",
            "description": "public clients, or client_secret_post",
        },
        "client_secret": {
            **_SECRET,
            "description": "client_secret_post (or use HTTP Basic)",
        },
    },
}
_ERROR = {"description": "RFC 6749 §5.2 error: {error, error_description}"}


@routes.post(
    "/oauth/token",
    summary="Token endpoint",
    response_class=JSONResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_TYPE: {"schema": _FORM_SCHEMA}},
        }
    },
    responses={
        200: {"description": "RFC 6749 §5.1 access token response"},
        400: _ERROR,
        401: {
            "description": "invalid_client with HTTP Basic: WWW-Authenticate challenge"
        },
    },
)
async def token(request: Request) -> JSONResponse:
    """Exchange a grant for tokens."""
    # No FastAPI dependencies on the busiest route: FastAPI would solve each node per request.
    dispatcher: TokenDispatcher = request.app.state.token_dispatcher
    form = await read_form(request)
    credentials = client_credentials_from(request.headers, form)
    token_request = TokenRequest.from_form(
        form, credentials, client_ip=client_ip(request)
    )
    # Each store operation the grant runs is committed when it returns (``db.stores.units``).
    response = await dispatcher.dispatch(token_request)
    record_token_issued(token_request.grant_type)
    bind_client_id(response.client_id)
    audit(
        "token.issued",
        grant_type=token_request.grant_type,
        subject=response.subject,
        scope=response.scope,
        jti=response.jti,
        with_refresh=response.refresh_token is not None,
    )
    return JsonBody(response.as_dict(), extra=NO_STORE_HEADERS)
