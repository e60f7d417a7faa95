"""``GET /oauth/authorize``: the authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1).

Validates the request (errors before the redirect URI is trusted are an HTML page, after it a redirect to the
client), then responds at once when the browser is signed in and consent is settled, else stores the request and
sends the browser to the login or consent page. No CORS headers: this is a top-level navigation, never a fetch.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from oauth_service.api.browser_flow import FlowDep, advance, page_url, redirect
from oauth_service.oauth.authorization import validate_authorization_request
from oauth_service.oauth.consent import NextStep

router = APIRouter(tags=["authorization"])


@router.get(
    "/oauth/authorize", include_in_schema=True, summary="Authorization endpoint"
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
    outcome = await advance(
        flow, auth_request, request_id=None, requested_at=flow.now()
    )
    if isinstance(outcome, Response):
        return outcome
    step, request_id, _client, _user = outcome
    page = "/oauth/login" if step is NextStep.LOGIN else "/oauth/consent"
    return redirect(page_url(page, request_id))
