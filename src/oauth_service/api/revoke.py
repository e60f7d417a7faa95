"""``POST /oauth/revoke`` (RFC 7009 §2.1, §2.2): client-authenticated revocation, always 200 for any token.

Public clients authenticate with their ``client_id`` alone (RFC 7009 §2.1 allows it: holding the token is the
proof). Client-authentication failures are ``invalid_client`` as at the token endpoint (§2.2.1).
"""

from fastapi import APIRouter, Request, Response

from oauth_service.api.bearer import access_token_verifier
from oauth_service.api.client_ip import client_ip
from oauth_service.api.deps import RuntimeDep, StoresDep
from oauth_service.api.forms import FORM_TYPE, client_credentials_from, read_form
from oauth_service.oauth.caching import NO_STORE
from oauth_service.oauth.client_auth import authenticate_client
from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.revocation import TokenRevoker
from oauth_service.observability.logs import audit, bind_client_id

router = APIRouter(tags=["oauth"])

TOKEN_FORM_SCHEMA = {
    "type": "object",
    "required": ["token"],
    "properties": {
        "token": {"type": "string", "format": "password"},
        "token_type_hint": {
            "type": "string",
            "enum": ["access_token", "refresh_token"],
        },
        "client_id": {
            "type": "string",
            "description": "public clients, or client_secret_post",
        },
        "client_secret": {
            "type": "string",
            "format": "password",
            "description": "client_secret_post (or use HTTP Basic)",
        },
    },
}


def require_token(form: dict[str, str]) -> str:
    """Return the ``token`` parameter or raise ``invalid_request``."""
    token = form.get("token")
    if token is None:
        raise InvalidRequestError("Missing 'token' parameter.")
    return token


@router.post(
    "/oauth/revoke",
    summary="Token revocation (RFC 7009)",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_TYPE: {"schema": TOKEN_FORM_SCHEMA}},
        }
    },
    responses={
        200: {
            "description": "Revoked, or nothing to revoke (the answer is the same); empty body"
        },
        400: {"description": "invalid_request / invalid_client"},
        401: {
            "description": "invalid_client with HTTP Basic: WWW-Authenticate challenge"
        },
    },
)
async def revoke(request: Request, runtime: RuntimeDep, stores: StoresDep) -> Response:
    """Revoke an access or refresh token issued to the calling client."""
    form = await read_form(request)
    credentials = client_credentials_from(request.headers, form)
    client = await authenticate_client(
        credentials,
        stores.clients,
        allow_public=True,
        throttle=runtime.throttle,
        client_ip=client_ip(request),
    )
    revoker = TokenRevoker(
        access_tokens=access_token_verifier(runtime),
        refresh_tokens=stores.refresh_tokens,
        revoked=stores.revoked_tokens,
        clock=runtime.clock,
    )
    hint = form.get("token_type_hint")
    # Committed when it returns, like every store operation (``db.stores.units``).
    await revoker.revoke(require_token(form), hint, client)
    bind_client_id(client.client_id)
    audit("token.revocation", token_type_hint=hint)
    return Response(status_code=200, headers=NO_STORE)
