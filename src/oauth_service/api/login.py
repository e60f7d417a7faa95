"""``GET/POST /oauth/login``: the sign-in page of the authorization endpoint.

A generic failure message never tells which of email or password was wrong; unknown emails burn the same argon2
time (``PasswordHasher.verify(None, ...)``). Success replaces any previous session (no fixation), sets the signed
cookie and answers 303, so a reload never re-posts the password.
"""

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oauth_service.api.browser_flow import (
    FlowDep,
    load_pending,
    page_url,
    read_form,
    redirect,
)
from oauth_service.api.client_ip import client_ip
from oauth_service.api.pages import form_action_headers, render_page
from oauth_service.api.sessions import (
    csrf_token,
    csrf_valid,
    read_browser_cookie,
    set_browser_cookie,
    set_session_cookie,
)
from oauth_service.crypto.tokens import new_opaque_token
from oauth_service.db.authorization_stores import PendingRequest
from oauth_service.db.sessions_end import end_browser_session, find_browser_session
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.models import User
from oauth_service.oauth.throttling import Attempt, ThrottledGrantError
from oauth_service.observability.logs import audit

router = APIRouter(tags=["authorization"], include_in_schema=False)

LOGIN_FAILED = "Invalid email or password."
LOGIN_LOCKED = "Too many failed sign-in attempts. Try again later."


async def _render(
    request: Request,
    flow: FlowDep,
    pending: PendingRequest,
    request_id: str,
    browser_id: str,
    *,
    email: str = "",
    error: str | None = None,
    status_code: int = 400,
) -> HTMLResponse:
    client = await flow.client(pending.request.client_id)
    context = {
        "client_name": client.name,
        "request_id": request_id,
        "csrf_token": csrf_token(flow.key, "login", request_id, browser_id),
        "email": email,
        "error": error,
    }
    return render_page(
        request,
        "login.html",
        context,
        status_code=status_code if error else 200,
        # A sign-in may end straight at the client (consent remembered): its origin must be a form-action.
        headers=form_action_headers(pending.request.redirect_uri),
    )


@router.get("/oauth/login")
async def login_page(request: Request, flow: FlowDep) -> Response:
    """Show the sign-in form for a pending authorization request; its CSRF token is bound to this browser."""
    request_id = request.query_params.get("request")
    pending = await load_pending(flow, request_id)
    assert request_id is not None  # noqa: S101 - load_pending refused it otherwise
    secure = flow.runtime.settings.secure_cookies
    browser_id = read_browser_cookie(request, flow.key, secure=secure)
    # OIDC Core §3.1.2.1: login_hint pre-fills the email (escaped by the template like any value).
    email = pending.request.login_hint or ""
    if browser_id is not None:
        return await _render(
            request, flow, pending, request_id, browser_id, email=email
        )
    browser_id = new_opaque_token()
    page = await _render(request, flow, pending, request_id, browser_id, email=email)
    set_browser_cookie(page, flow.key, browser_id, secure=secure)
    return page


async def _authenticate(
    flow: FlowDep, email: str, password: str, ip: str | None
) -> User | None:
    """Check the credentials; throttled like the password grant (shared per-email and per-IP counters).

    Raises:
        ThrottledGrantError: the email or the IP is locked (a correct password is refused too).
    """
    # The lock's key and the lookup's: one spelling per account, so padding buys no fresh guesses.
    email = canonical_email(email)
    attempt = Attempt("login", email, ip)
    await flow.runtime.throttle.check(attempt)
    user = await flow.users.get_by_email(email) if email else None
    # The page's session has read the pending request: end its transaction so its pooled connection goes
    # back while the hash waits for the CPU (a commit, which can never drop a write; the page writes later).
    await flow.session.commit()
    usable = user is not None and user.is_active
    stored = user.password_hash if usable and user is not None else None
    check = await flow.runtime.passwords.verify(stored, password)
    if not check.ok or user is None:
        await flow.runtime.throttle.failed(attempt)
        audit("login.failed", via="login_form", subject=user.id if user else None)
        return None
    await flow.runtime.throttle.succeeded(attempt)
    audit("login.succeeded", via="login_form", subject=user.id)
    if check.new_hash is not None:
        await flow.users.update_password_hash(
            user.id, check.new_hash, replacing=user.password_hash
        )
    return user


async def _replace_session(
    flow: FlowDep, user: User, now: datetime
) -> tuple[str | None, int]:
    """End the browser's previous session before a new one starts (no fixation: the cookie's secret is new).

    The same user signing in again (``prompt=login``, ``max_age``) continues the session: same ``sid``, so
    the clients answered in it stay bound to it (Back-Channel Logout §2.5). Another user replaces it: it ends
    as a logout does, and its clients are told. Returns the ``sid`` to continue and the notifications queued.
    """
    if flow.session_id is None:
        return None, 0
    previous = await find_browser_session(flow.session, flow.session_id, now)
    if previous is None:
        await flow.logins.delete(flow.session_id)
        return None, 0
    if previous.user_id == user.id:
        await flow.logins.delete(flow.session_id)
        return previous.sid, 0
    notified = await end_browser_session(
        flow.session, previous, reason="session_replaced", now=now
    )
    return None, notified


@router.post("/oauth/login")
async def login_submit(request: Request, flow: FlowDep) -> Response:
    """Check the credentials; on success start a session and continue to consent with a 303."""
    form = await read_form(request)
    request_id = form.get("request")
    pending = await load_pending(flow, request_id)
    assert request_id is not None  # noqa: S101 - load_pending refused it otherwise
    browser_id = read_browser_cookie(
        request, flow.key, secure=flow.runtime.settings.secure_cookies
    )
    if browser_id is None or not csrf_valid(
        flow.key, form.get("csrf_token"), "login", request_id, browser_id
    ):
        raise InvalidRequestError("The form expired. Go back and try again.")
    email = form.get("email", "").strip()
    try:
        user = await _authenticate(
            flow, email, form.get("password", ""), client_ip(request)
        )
    except ThrottledGrantError as locked:
        page = await _render(
            request,
            flow,
            pending,
            request_id,
            browser_id,
            email=email,
            error=LOGIN_LOCKED,
            status_code=429,
        )
        page.headers["Retry-After"] = str(locked.retry_after)
        return page
    if user is None:
        return await _render(
            request,
            flow,
            pending,
            request_id,
            browser_id,
            email=email,
            error=LOGIN_FAILED,
        )
    now = flow.now()
    sid, notified = await _replace_session(flow, user, now)
    ttl = flow.runtime.settings.login_session_ttl
    raw = await flow.logins.create(
        user.id, auth_time=now, expires_at=now + timedelta(seconds=ttl), sid=sid
    )
    await flow.session.commit()
    if notified:
        flow.runtime.backchannel_due.set()  # delivered in the background
    response = redirect(page_url("/oauth/consent", request_id), status_code=303)
    set_session_cookie(
        response,
        flow.key,
        raw,
        max_age=ttl,
        secure=flow.runtime.settings.secure_cookies,
    )
    return response
