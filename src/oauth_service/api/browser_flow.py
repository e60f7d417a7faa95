"""The per-request context of the browser pages (authorize, login, consent) and the step they share.

``BrowserFlow`` bundles the stores bound to the request's session; ``advance`` runs the decision of
``oauth.consent.next_step`` and turns it into a redirect: to the login page, to the consent page, or to the client
with the authorization response (RFC 6749 §4.1.2, §4.2.2). Pending requests live server-side for
``PENDING_TTL``, so any replica can serve the next page.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from oauth_service.api.deps import (
    RuntimeDep,
    SessionDep,
    StoresDep,
    TokenIssuerDep,
    build_id_token_minter,
)
from oauth_service.api.sessions import read_session_cookie, signing_key
from oauth_service.db.authorization_stores import (
    LoginSession,
    PendingRequest,
    SqlAuthorizationRequestStore,
    SqlConsentStore,
    SqlLoginSessionStore,
)
from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.caching import NO_STORE
from oauth_service.oauth.consent import NextStep, next_step
from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.response_types import (
    ResponseTypeHandler,
    SignIn,
    build_response_types,
)
from oauth_service.oauth.storage import ClientStore, ScopeStore, UserStore
from oauth_service.observability.metrics import record_token_issued
from oauth_service.oidc.implicit import openid_response_types
from oauth_service.runtime import Runtime

PENDING_TTL = timedelta(minutes=10)


@dataclass(slots=True)
class BrowserFlow:
    """What the browser pages need for one request."""

    runtime: Runtime
    session: AsyncSession
    key: bytes
    clients: ClientStore
    users: UserStore
    consents: SqlConsentStore
    logins: SqlLoginSessionStore
    pending: SqlAuthorizationRequestStore
    scopes: ScopeStore
    handlers: dict[str, ResponseTypeHandler]
    session_id: str | None = None

    def now(self) -> datetime:
        """The injected clock's time."""
        return self.runtime.clock()

    async def login(self) -> LoginSession | None:
        """The browser's live login session, if its cookie is valid."""
        if self.session_id is None:
            return None
        return await self.logins.get(self.session_id, self.now())

    async def client(self, client_id: str) -> Client:
        """The request's client; it vanished only if deleted since the request was validated."""
        client = await self.clients.get(client_id)
        if client is None:
            raise InvalidRequestError("The client no longer exists.")
        return client


async def get_flow(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    stores: StoresDep,
    issuer: TokenIssuerDep,
) -> BrowserFlow:
    """Build the browser-page context for this request."""
    settings = runtime.settings
    key = await signing_key(request, runtime)
    handlers = build_response_types(
        codes=stores.codes,
        minter=issuer,
        code_ttl=timedelta(seconds=settings.authorization_code_ttl),
        clock=runtime.clock,
        enabled_grants=settings.enabled_grants,
        openid=openid_response_types(
            build_id_token_minter(runtime), issuer, stores.users
        ),
    )
    return BrowserFlow(
        runtime=runtime,
        session=session,
        key=key,
        clients=stores.clients,
        users=stores.users,
        consents=SqlConsentStore(session),
        logins=SqlLoginSessionStore(session),
        pending=SqlAuthorizationRequestStore(session),
        scopes=stores.scopes,
        handlers=handlers,
        session_id=read_session_cookie(request, key, secure=settings.secure_cookies),
    )


FlowDep = Annotated[BrowserFlow, Depends(get_flow)]


def page_url(path: str, request_id: str) -> str:
    """The URL of a login or consent page for a pending request."""
    return f"{path}?{urlencode({'request': request_id})}"


def redirect(location: str, *, status_code: int = 302) -> RedirectResponse:
    """A redirect that no cache keeps (it may carry a code or token)."""
    return RedirectResponse(location, status_code=status_code, headers=NO_STORE)


def sign_in_of(user: User, login: LoginSession) -> SignIn:
    """The sign-in a response answers for: the session's user, ``auth_time`` and ``sid``."""
    return SignIn(user, login.auth_time, login.sid)


async def respond(
    flow: BrowserFlow,
    request: AuthorizationRequest,
    client: Client,
    sign_in: SignIn,
    *,
    request_id: str | None,
    status_code: int,
) -> RedirectResponse:
    """Finish the pending request and commit the page's writes, then issue the response and redirect.

    The client is recorded against the session's ``sid`` in the same commit, before anything is issued, so
    back-channel logout never misses a client that holds a code or token of this session. The page's session
    commits first: the code is stored by the core's store on a connection of its own, and SQLite has one
    writer at a time, so the session must not hold the write lock meanwhile. A failure after the commit
    leaves no code behind, only a finished request to start again.
    """
    if request_id is not None:
        await flow.pending.delete(request_id)
    if sign_in.sid is not None:
        await flow.logins.add_client(
            sign_in.sid, client.client_id, sign_in.user.id, flow.now()
        )
    await flow.session.commit()
    result = await flow.handlers[request.response_type](request, client, sign_in)
    if "token" in request.response_type.split():
        # The implicit grant issues its access token here, not at the token endpoint; counted after the
        # commit, as the token endpoint counts its grants.
        record_token_issued("implicit")
    return redirect(result.location(), status_code=status_code)


async def advance(
    flow: BrowserFlow,
    request: AuthorizationRequest,
    *,
    request_id: str | None,
    requested_at: datetime,
    status_code: int = 302,
) -> RedirectResponse | tuple[NextStep, str, Client, User | None]:
    """Run the next step: respond at once, or return (step, pending id, client, user) for a page.

    Raises:
        OAuthError: with a redirect (``prompt=none``, ``admin`` scope refused).
    """
    client = await flow.client(request.client_id)
    login = await flow.login()
    user = await flow.users.get(login.user_id) if login is not None else None
    remembered = await flow.consents.get(user.id, client.client_id) if user else None
    step = next_step(
        request,
        client,
        user=user,
        auth_time=login.auth_time if login else None,
        requested_at=requested_at,
        remembered=remembered,
    )
    if step is NextStep.RESPOND:
        assert user is not None  # noqa: S101 - next_step guarantees it
        assert login is not None  # noqa: S101
        return await respond(
            flow,
            request,
            client,
            sign_in_of(user, login),
            request_id=request_id,
            status_code=status_code,
        )
    if request_id is None:
        request_id = await flow.pending.save(
            request, created_at=requested_at, expires_at=requested_at + PENDING_TTL
        )
        await flow.session.commit()
    return step, request_id, client, user


async def load_pending(flow: BrowserFlow, request_id: str | None) -> PendingRequest:
    """Return the pending request named in a page URL or form; unknown or expired is an error page."""
    pending = await flow.pending.get(request_id, flow.now()) if request_id else None
    if pending is None:
        raise InvalidRequestError(
            "This sign-in request is unknown or expired. Return to the application and start again."
        )
    return pending


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form's text fields (first value of each)."""
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}
