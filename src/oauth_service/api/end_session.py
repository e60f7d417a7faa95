"""``GET/POST /oauth/logout``: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2, §3).

The request is checked first (``oidc.end_session``): a bad ``id_token_hint`` or an unregistered
``post_logout_redirect_uri`` is an error page, never a redirect. A request that proves its relying party (a
valid hint for the signed-in user) logs out at once; any other request from a signed-in browser gets a
confirmation page whose POST carries a CSRF token bound to the browser session, so a cross-site page cannot
sign the user out. Logging out ends the browser session (``db.sessions_end``: the row, its refresh tokens
without ``offline_access``, back-channel logouts to its clients), commits, wakes the back-channel delivery
and clears the cookie, then redirects to the registered URI with ``state``, or shows the signed-out page.
Nobody signed in gets the same outcome: logging out twice is not an error.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from oauth_service.api.browser_flow import read_form, redirect
from oauth_service.api.deps import RuntimeDep, SessionDep
from oauth_service.api.pages import form_action_headers, render_page
from oauth_service.api.sessions import (
    clear_session_cookie,
    csrf_token,
    csrf_valid,
    read_session_cookie,
    signing_key,
)
from oauth_service.db.sessions_end import end_browser_session, find_browser_session
from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.observability.logs import audit
from oauth_service.oidc.end_session import LogoutRequest, validate_logout_request

router = APIRouter(tags=["authorization"], include_in_schema=False)

_CSRF_PURPOSE = "logout"


async def _confirmation(
    request: Request,
    runtime: RuntimeDep,
    logout: LogoutRequest,
    key: bytes,
    raw_id: str,
    user_id: str,
) -> Response:
    user = await runtime.stores.users.get(user_id)
    context = {
        "issuer": runtime.settings.issuer,
        "user_email": user.email if user is not None else None,
        "client_name": logout.client.name if logout.client is not None else None,
        "params": logout.carried,
        "csrf_token": csrf_token(key, _CSRF_PURPOSE, raw_id),
    }
    # The form's POST ends in a redirect to the relying party: its origin must be a form-action.
    headers = form_action_headers(logout.redirect_uri) if logout.redirect_uri else None
    return render_page(request, "logout_confirm.html", context, headers=headers)


@router.api_route("/oauth/logout", methods=["GET", "POST"])
async def end_session(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """Log the browser out, asking first when the request does not prove its relying party."""
    is_post = request.method == "POST"
    params = await read_form(request) if is_post else dict(request.query_params)
    settings = runtime.settings
    logout = await validate_logout_request(
        params,
        keys=runtime.keys,
        issuer=settings.issuer,
        clients=runtime.stores.clients,
    )
    key = await signing_key(request, runtime)
    raw_id = read_session_cookie(request, key, secure=settings.secure_cookies)
    now = runtime.clock()
    browser = await find_browser_session(session, raw_id, now) if raw_id else None
    if (
        browser is not None
        and raw_id is not None
        and not logout.proves(browser.user_id, browser.sid)
    ):
        if not (is_post and params.get("confirm") == "yes"):
            return await _confirmation(
                request, runtime, logout, key, raw_id, browser.user_id
            )
        if not csrf_valid(key, params.get("csrf_token"), _CSRF_PURPOSE, raw_id):
            raise InvalidRequestError("The form expired. Go back and try again.")
    notified = 0
    if browser is not None:
        notified = await end_browser_session(session, browser, reason="logout", now=now)
        await session.commit()
        audit(
            "logout.session",
            subject=browser.user_id,
            sid=browser.sid,
            client_id=logout.client.client_id if logout.client else None,
            backchannel_notifications=notified,
        )
    if notified:
        runtime.backchannel_due.set()  # delivered in the background: this response does not wait
    location = logout.redirect_location()
    if location is not None:
        response: Response = redirect(location, status_code=303 if is_post else 302)
    else:
        response = render_page(request, "signed_out.html", {"issuer": settings.issuer})
    clear_session_cookie(response, secure=settings.secure_cookies)
    return response
