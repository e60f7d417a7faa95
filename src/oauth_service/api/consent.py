"""``GET/POST /oauth/consent``: the consent page (RFC 6749 §4.1.1 step B; deny is §4.1.2.1 ``access_denied``).

The page names the client and lists the requested scopes with their descriptions. Approval is remembered per
user and client, then the authorization response is issued; both answers are 303 redirects to the client.
"""

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from oauth_service.api.browser_flow import (
    FlowDep,
    advance,
    load_pending,
    page_url,
    read_form,
    redirect,
    respond,
    sign_in_of,
)
from oauth_service.api.errors import redirect_location
from oauth_service.api.pages import form_action_headers, render_page
from oauth_service.api.sessions import csrf_token, csrf_valid
from oauth_service.oauth.consent import NextStep, check_user_scope
from oauth_service.oauth.errors import AccessDeniedError, InvalidRequestError

router = APIRouter(tags=["authorization"], include_in_schema=False)


@router.get("/oauth/consent")
async def consent_page(request: Request, flow: FlowDep) -> Response:
    """Continue a pending request: sign in first, respond at once, or show the consent form."""
    request_id = request.query_params.get("request")
    pending = await load_pending(flow, request_id)
    outcome = await advance(
        flow, pending.request, request_id=request_id, requested_at=pending.created_at
    )
    if isinstance(outcome, Response):
        return outcome
    step, request_id, client, user = outcome
    if step is NextStep.LOGIN or user is None or flow.session_id is None:
        return redirect(page_url("/oauth/login", request_id))
    descriptions = await flow.scopes.all()
    context = {
        "client_name": client.name,
        "user_email": user.email,
        "scopes": [
            (name, descriptions.get(name, "")) for name in sorted(pending.request.scope)
        ],
        "redirect_host": urlsplit(pending.request.redirect_uri).netloc
        or pending.request.redirect_uri,
        "request_id": request_id,
        "csrf_token": csrf_token(flow.key, "consent", flow.session_id, request_id),
    }
    return render_page(
        request,
        "consent.html",
        context,
        headers=form_action_headers(pending.request.redirect_uri),
    )


@router.post("/oauth/consent")
async def consent_submit(request: Request, flow: FlowDep) -> Response:
    """Approve (remember consent, issue the response) or deny (``access_denied``); 303 either way."""
    form = await read_form(request)
    request_id = form.get("request")
    pending = await load_pending(flow, request_id)
    assert request_id is not None  # noqa: S101 - load_pending refused it otherwise
    login = await flow.login()
    if login is None or flow.session_id is None:
        return redirect(page_url("/oauth/login", request_id), status_code=303)
    if not csrf_valid(
        flow.key, form.get("csrf_token"), "consent", flow.session_id, request_id
    ):
        raise InvalidRequestError("The form expired. Go back and try again.")
    auth_request = pending.request
    decision = form.get("decision")
    if decision == "deny":
        await flow.pending.delete(request_id)
        await flow.session.commit()
        denied = AccessDeniedError(redirect=auth_request.error_redirect())
        return redirect(redirect_location(denied), status_code=303)
    if decision != "approve":
        raise InvalidRequestError("Choose Allow or Deny.")
    user = await flow.users.get(login.user_id)
    if user is None or not user.is_active:
        return redirect(page_url("/oauth/login", request_id), status_code=303)
    client = await flow.client(auth_request.client_id)
    check_user_scope(auth_request, user)
    await flow.consents.grant(user.id, client.client_id, auth_request.scope, flow.now())
    return await respond(
        flow,
        auth_request,
        client,
        sign_in_of(user, login),
        request_id=request_id,
        status_code=303,
    )
