"""``GET /oauth/authorize``: the authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1).

Validates the request (errors before the redirect URI is trusted are an HTML page, after it a redirect to the
client), then responds at once when the browser is signed in and consent is settled, else stores the request and
sends the browser to the login or consent page. No CORS headers: this is a top-level navigation, never a fetch.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oauth_service.api.browser_flow import FlowDep, advance, page_url, redirect
from oauth_service.api.client_ip import client_ip
from oauth_service.oauth.authorization import validate_authorization_request
from oauth_service.oauth.consent import NextStep

router = APIRouter(tags=["authorization"])


def _query(name: str, description: str, **schema: object) -> dict[str, object]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


# Documented by hand: the query is parsed as a whole (repeated parameters refused), not by FastAPI.
_PARAMETERS = [
    _query("response_type", "code, or token (implicit)", enum=["code", "token"]),
    _query("client_id", "the registered client"),
    _query("redirect_uri", "one of the client's registered redirect URIs"),
    _query("scope", "space-separated scopes"),
    _query("state", "opaque value echoed back to the client"),
    _query("code_challenge", "PKCE challenge (RFC 7636); required for public clients"),
    _query("code_challenge_method", "PKCE method", enum=["S256", "plain"]),
    _query("prompt", "none, login or consent"),
]
_HTML: dict[str, object] = {"text/html": {"schema": {"type": "string"}}}


@router.get(
    "/oauth/authorize",
    include_in_schema=True,
    summary="Authorization endpoint",
    response_class=HTMLResponse,
    openapi_extra={"parameters": _PARAMETERS},
    responses={
        200: {"description": "A page of the flow (consent)", "content": _HTML},
        302: {
            "description": "To the login or consent page, or to the client's redirect_uri with the "
            "response or an error (RFC 6749 §4.1.2, §4.1.2.1)"
        },
        400: {
            "description": "HTML error page: the client or redirect_uri cannot be trusted, so "
            "there is no redirect (RFC 6749 §4.1.2.1)",
            "content": _HTML,
        },
        429: {
            "description": "HTML page: too many authorization requests from this IP "
            "(temporarily_unavailable, with Retry-After)",
            "content": _HTML,
        },
    },
)
async def authorize(request: Request, flow: FlowDep) -> Response:
    """Start an authorization (``response_type=code`` with PKCE, or ``token``)."""
    settings = flow.runtime.settings
    auth_request = await validate_authorization_request(
        list(request.query_params.multi_items()),
        clients=flow.clients,
        issuer=settings.issuer,
        response_types=frozenset(flow.handlers),
        allow_plain_pkce=settings.allow_plain_pkce,
    )
    # What follows writes a row (a pending request or a code): one address may not fill the table.
    await flow.runtime.throttle.admit_authorization(client_ip(request))
    outcome = await advance(
        flow, auth_request, request_id=None, requested_at=flow.now()
    )
    if isinstance(outcome, Response):
        return outcome
    step, request_id, _client, _user = outcome
    page = "/oauth/login" if step is NextStep.LOGIN else "/oauth/consent"
    return redirect(page_url(page, request_id))
