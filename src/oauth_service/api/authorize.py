"""``GET /oauth/authorize``: the authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1; OIDC Core §3.1.2, §3.2.2).

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
from oauth_service.oidc.authorization_params import openid_policy

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
    _query(
        "response_type",
        "code; or, for clients allowed the implicit grant, token, id_token or 'id_token token' "
        "(space-separated values compare as a set)",
        enum=["code", "token", "id_token", "id_token token"],
    ),
    _query("client_id", "the registered client"),
    _query("redirect_uri", "one of the client's registered redirect URIs"),
    _query(
        "scope", "space-separated scopes; openid makes it an OpenID Connect request"
    ),
    _query("state", "opaque value echoed back to the client"),
    _query(
        "response_mode",
        "where the response goes: query (code only) or fragment",
        enum=["query", "fragment"],
    ),
    _query("code_challenge", "PKCE challenge (RFC 7636); required for public clients"),
    _query("code_challenge_method", "PKCE method", enum=["S256", "plain"]),
    _query(
        "nonce",
        "echoed in the ID token (OpenID Connect); required with the id_token response types",
        maxLength=512,
    ),
    _query(
        "prompt",
        "none, or any of login, consent, select_account (treated as login)",
    ),
    _query(
        "max_age",
        "seconds since the user last signed in beyond which they must sign in again",
        pattern="^[0-9]+$",
    ),
    _query("login_hint", "the email to pre-fill on the sign-in page"),
    _query(
        "id_token_hint",
        "an ID token this server issued to the client (expired accepted): whom the client expects",
    ),
    _query("ui_locales", "preferred languages (accepted; pages are in English)"),
    _query(
        "display",
        "how the pages are shown (accepted)",
        enum=["page", "popup", "touch", "wap"],
    ),
    _query("acr_values", "requested authentication context (accepted, not acted on)"),
    _query("claims", "not supported: refused with invalid_request"),
    _query("request", "not supported: refused with request_not_supported"),
    _query("request_uri", "not supported: refused with request_uri_not_supported"),
    _query("registration", "not supported: refused with registration_not_supported"),
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
    """Start an authorization (``code`` with PKCE, or an implicit ``token``, ``id_token``, ``id_token token``)."""
    settings = flow.runtime.settings
    auth_request = await validate_authorization_request(
        list(request.query_params.multi_items()),
        clients=flow.clients,
        issuer=settings.issuer,
        response_types=frozenset(flow.handlers),
        allow_plain_pkce=settings.allow_plain_pkce,
        openid=openid_policy(lambda: flow.runtime.keys, issuer=settings.issuer),
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
