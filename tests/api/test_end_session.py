"""``/oauth/logout`` (OpenID Connect RP-Initiated Logout 1.0 §2, §3) and the back-channel logouts it starts.

A browser signs in through the real pages (the session gets its ``sid``, the client is recorded against it),
then logs out with or without an ``id_token_hint``. Back-channel receivers are real loopback servers.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.api.deps import build_id_token_minter
from oauth_service.api.sessions import clear_session_cookie
from oauth_service.app import create_app
from oauth_service.db.tables import LoginSessionRow
from oauth_service.oauth.models import Authentication, User
from oauth_service.oidc.id_tokens import IdTokenMinter
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    hidden,
    new_pkce,
)
from tests.backchannel_receiver import (
    Receiver,
    running_receiver,
    verified_logout_token,
)
from tests.conftest import ISSUER, make_settings
from tests.factories import make_user
from tests.logout_helpers import (
    add_refresh_token,
    jti_revoked,
    make_logout_client,
    outbox,
    refresh_revoked_at,
    session_sid,
)

SIGNED_OUT = "https://app.example/signed-out"
PAGE_CSP_BASE = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
TIMEOUT = 2.0


@pytest.fixture
async def app(db_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The app, allowed to reach loopback receivers, with a 2 s back-channel timeout."""
    settings = make_settings(
        db_url,
        outbound_allow_private_networks=True,
        backchannel_logout_timeout=TIMEOUT,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback back-channel receiver for the relying party ``rp``."""
    with running_receiver() as running:
        yield running


@pytest.fixture
async def rp(runtime: Runtime, receiver: Receiver) -> str:
    """The relying party: a registered logout URI and a back-channel receiver."""
    await make_logout_client(
        runtime,
        "rp",
        post_logout_redirect_uris=(SIGNED_OUT,),
        backchannel_logout_uri=receiver.url,
    )
    return "rp"


async def _sign_in(
    http: httpx.AsyncClient, runtime: Runtime, email: str = "alice@example.com"
) -> tuple[User, str]:
    """Sign in through the pages and get a code for ``rp``; return the user and the session's sid."""
    user, password = await make_user(runtime, email=email)
    _, challenge = new_pkce()
    url = authorize_url(
        response_type="code",
        client_id="rp",
        redirect_uri=CALLBACK,
        scope="openid",
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    response = await authorize_through_pages(http, url, email=email, password=password)
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"].startswith(CALLBACK)
    return user, await session_sid(runtime, user.id)


def _hint(
    runtime: Runtime, subject: str, sid: str | None, *, client_id: str = "rp"
) -> str:
    minter = build_id_token_minter(runtime)
    return minter.mint(client_id, Authentication(subject, runtime.clock(), sid=sid))


async def _sessions(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(LoginSessionRow))
    return int(count or 0)


def _cookie_cleared(response: httpx.Response) -> bool:
    cookie = response.headers.get("set-cookie", "")
    return cookie.startswith('oauth_session=""') and "Max-Age=0" in cookie


async def _eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_logout_with_valid_hint_ends_the_session_and_redirects_with_state(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, receiver: Receiver
) -> None:
    user, sid = await _sign_in(client, runtime)
    response = await client.get(
        "/oauth/logout",
        params={
            "id_token_hint": _hint(runtime, user.id, sid),
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "af0ifjsldkj",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{SIGNED_OUT}?state=af0ifjsldkj"
    assert response.headers["cache-control"] == "no-store"
    assert _cookie_cleared(response)
    assert await _sessions(runtime) == 0
    # The relying party hears of it by back channel, with the session's sid.
    await _eventually(lambda: len(receiver.received) == 1)
    _, claims = verified_logout_token(
        receiver.tokens()[0], runtime.keys.jwks(), issuer=ISSUER, client_id="rp"
    )
    assert (claims["sub"], claims["sid"]) == (user.id, sid)
    # Signed out: the next authorization asks to sign in again.
    again = await client.get(
        authorize_url(
            response_type="code",
            client_id="rp",
            redirect_uri=CALLBACK,
            scope="openid",
        )
    )
    assert again.status_code == 302
    assert again.headers["location"].startswith("/oauth/login?")


async def test_logout_accepts_an_expired_hint(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, sid = await _sign_in(client, runtime)
    then = runtime.clock() - timedelta(days=2)
    minter = IdTokenMinter(
        lambda: runtime.keys,
        issuer=ISSUER,
        ttl=timedelta(hours=1),
        clock=lambda: then,
    )
    hint = minter.mint("rp", Authentication(user.id, then, sid=sid))
    response = await client.get(
        "/oauth/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT},
    )
    assert response.status_code == 302
    assert response.headers["location"] == SIGNED_OUT
    assert await _sessions(runtime) == 0


async def test_logout_by_form_post_with_hint_answers_303(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, sid = await _sign_in(client, runtime)
    response = await client.post(
        "/oauth/logout",
        data={
            "id_token_hint": _hint(runtime, user.id, sid),
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "x y",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{SIGNED_OUT}?state=x+y"
    assert await _sessions(runtime) == 0


async def test_logout_without_hint_asks_then_signs_out_on_the_confirmed_post(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    await _sign_in(client, runtime)
    params = {
        "client_id": "rp",
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "st",
        "ui_locales": "en",
        "logout_hint": "ignored",
    }
    page = await client.get("/oauth/logout", params=params)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"] == (
        f"{PAGE_CSP_BASE}; form-action 'self' https://app.example"
    )
    assert "<h1>Sign out of http://oauth.test?</h1>" in page.text
    assert "Signed in as alice@example.com" in page.text
    assert hidden(page.text, "client_id") == "rp"
    assert hidden(page.text, "post_logout_redirect_uri") == SIGNED_OUT
    assert hidden(page.text, "state") == "st"
    assert hidden(page.text, "ui_locales") == "en"
    assert 'name="logout_hint"' not in page.text
    assert await _sessions(runtime) == 1  # asking ends nothing
    form = {
        "csrf_token": hidden(page.text, "csrf_token"),
        "client_id": "rp",
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "st",
        "ui_locales": "en",
        "confirm": "yes",
    }
    response = await client.post("/oauth/logout", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == f"{SIGNED_OUT}?state=st"
    assert _cookie_cleared(response)
    assert await _sessions(runtime) == 0


async def test_logout_with_hint_for_another_user_asks_first(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    await _sign_in(client, runtime)
    bob, _ = await make_user(runtime, email="bob@example.com")
    page = await client.get(
        "/oauth/logout", params={"id_token_hint": _hint(runtime, bob.id, None)}
    )
    assert page.status_code == 200
    assert "<h1>Sign out of http://oauth.test?</h1>" in page.text
    assert page.headers["content-security-policy"] == (
        f"{PAGE_CSP_BASE}; form-action 'self'"
    )
    assert await _sessions(runtime) == 1


async def test_logout_with_hint_from_another_session_of_the_user_asks_first(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, _ = await _sign_in(client, runtime)
    stale = await client.get(
        "/oauth/logout",
        params={
            "id_token_hint": _hint(runtime, user.id, "an-earlier-session-sid"),
            "post_logout_redirect_uri": SIGNED_OUT,
        },
    )
    assert stale.status_code == 200
    assert "<h1>Sign out of http://oauth.test?</h1>" in stale.text
    assert "set-cookie" not in stale.headers
    assert await _sessions(runtime) == 1
    # The same user's hint without a sid still proves the request, as one for this session does.
    done = await client.get(
        "/oauth/logout", params={"id_token_hint": _hint(runtime, user.id, None)}
    )
    assert done.status_code == 200
    assert _cookie_cleared(done)
    assert await _sessions(runtime) == 0


@pytest.mark.parametrize(
    "csrf", ["", "forged", "x" * 43], ids=["missing", "forged", "wrong"]
)
async def test_confirmation_post_without_a_valid_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, csrf: str
) -> None:
    await _sign_in(client, runtime)
    response = await client.post(
        "/oauth/logout", data={"client_id": "rp", "confirm": "yes", "csrf_token": csrf}
    )
    assert response.status_code == 400
    assert (
        "<strong>invalid_request</strong>: The form expired. Go back and try again."
        in response.text
    )
    assert "location" not in response.headers
    assert await _sessions(runtime) == 1


async def test_a_post_without_confirm_shows_the_confirmation(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    await _sign_in(client, runtime)
    response = await client.post("/oauth/logout", data={"client_id": "rp"})
    assert response.status_code == 200
    assert "<h1>Sign out of http://oauth.test?</h1>" in response.text
    assert await _sessions(runtime) == 1


@pytest.mark.parametrize(
    ("params", "description"),
    [
        (
            {"client_id": "rp", "post_logout_redirect_uri": "https://evil.example/"},
            "post_logout_redirect_uri is not registered for this client",
        ),
        (
            {"client_id": "rp", "post_logout_redirect_uri": f"{SIGNED_OUT}/"},
            "post_logout_redirect_uri is not registered for this client",
        ),
        (
            {"post_logout_redirect_uri": SIGNED_OUT},
            "post_logout_redirect_uri needs client_id or an id_token_hint",
        ),
        ({"id_token_hint": "not.a.jwt"}, "id_token_hint is not valid"),
        ({"client_id": "nobody"}, "client_id is unknown"),
    ],
    ids=["unregistered", "not-exact", "no-client", "bad-hint", "unknown-client"],
)
async def test_bad_logout_request_is_an_error_page_never_a_redirect(
    client: httpx.AsyncClient,
    runtime: Runtime,
    rp: str,
    params: dict[str, str],
    description: str,
) -> None:
    await _sign_in(client, runtime)
    response = await client.get("/oauth/logout", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert f"<strong>invalid_request</strong>: {description}" in response.text
    assert await _sessions(runtime) == 1


async def test_client_id_not_in_the_hints_audience_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, sid = await _sign_in(client, runtime)
    await make_logout_client(runtime, "other", post_logout_redirect_uris=(SIGNED_OUT,))
    response = await client.get(
        "/oauth/logout",
        params={
            "id_token_hint": _hint(runtime, user.id, sid),
            "client_id": "other",
            "post_logout_redirect_uri": SIGNED_OUT,
        },
    )
    assert response.status_code == 400
    assert (
        "<strong>invalid_request</strong>: client_id does not match the id_token_hint"
        in response.text
    )
    assert await _sessions(runtime) == 1


async def test_an_access_token_is_not_an_id_token_hint(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, _ = await _sign_in(client, runtime)
    access = runtime.keys.sign(
        {"iss": ISSUER, "sub": user.id, "aud": "rp", "exp": 2**31, "iat": 0}
    )
    response = await client.get("/oauth/logout", params={"id_token_hint": access})
    assert response.status_code == 400
    assert (
        "<strong>invalid_request</strong>: id_token_hint is not valid" in response.text
    )


async def test_nobody_signed_in_redirects_to_a_registered_uri(
    client: httpx.AsyncClient, rp: str
) -> None:
    response = await client.get(
        "/oauth/logout",
        params={
            "client_id": "rp",
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "1",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{SIGNED_OUT}?state=1"


async def test_nobody_signed_in_without_uri_shows_the_signed_out_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/oauth/logout")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"] == (
        f"{PAGE_CSP_BASE}; form-action 'self'"
    )
    assert "<h1>You are signed out</h1>" in response.text
    assert "You have been signed out of http://oauth.test." in response.text


async def test_logging_out_twice_is_not_an_error(
    client: httpx.AsyncClient, runtime: Runtime, rp: str
) -> None:
    user, sid = await _sign_in(client, runtime)
    params = {"id_token_hint": _hint(runtime, user.id, sid)}
    first = await client.get("/oauth/logout", params=params)
    second = await client.get("/oauth/logout", params=params)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "<h1>You are signed out</h1>" in second.text


async def test_logout_revokes_the_sessions_refresh_tokens_except_offline_access(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, receiver: Receiver
) -> None:
    user, sid = await _sign_in(client, runtime)
    plain, plain_jti = await add_refresh_token(
        runtime, client_id="rp", user_id=user.id, sid=sid, scope="openid read"
    )
    offline, offline_jti = await add_refresh_token(
        runtime, client_id="rp", user_id=user.id, sid=sid, scope="offline_access openid"
    )
    elsewhere, _ = await add_refresh_token(
        runtime, client_id="rp", user_id=user.id, sid="another-session", scope="openid"
    )
    response = await client.get(
        "/oauth/logout", params={"id_token_hint": _hint(runtime, user.id, sid)}
    )
    assert response.status_code == 200
    assert await refresh_revoked_at(runtime, plain) is not None
    assert await jti_revoked(runtime, plain_jti)
    assert await runtime.revocations.contains(plain_jti)
    assert await refresh_revoked_at(runtime, offline) is None
    assert not await jti_revoked(runtime, offline_jti)
    assert await refresh_revoked_at(runtime, elsewhere) is None
    await _eventually(lambda: len(receiver.received) == 1)


async def test_logout_does_not_wait_for_a_hanging_receiver(
    client: httpx.AsyncClient, runtime: Runtime, rp: str, receiver: Receiver
) -> None:
    receiver.hang_seconds = TIMEOUT + 1
    user, sid = await _sign_in(client, runtime)
    started = time.monotonic()
    response = await client.get(
        "/oauth/logout", params={"id_token_hint": _hint(runtime, user.id, sid)}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < TIMEOUT / 2
    # The delivery did start, in the background, and is retried after its timeout.
    await _eventually(lambda: len(receiver.received) == 1)
    await _eventually_async(runtime)


async def _eventually_async(runtime: Runtime) -> None:
    deadline = time.monotonic() + TIMEOUT + 3
    while True:
        rows = await outbox(runtime)
        if rows and rows[0].last_error is not None:
            assert rows[0].last_error == f"no answer within {TIMEOUT:g} s"
            return
        assert time.monotonic() < deadline, "no retry was scheduled"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("secure", "expected"),
    [
        (
            True,
            '__Host-oauth_session=""; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure',
        ),
        (False, 'oauth_session=""; HttpOnly; Max-Age=0; Path=/oauth; SameSite=lax'),
    ],
    ids=["https-host-prefix", "http"],
)
def test_clearing_the_session_cookie_matches_how_it_was_set(
    secure: bool, expected: str
) -> None:
    response = Response()
    clear_session_cookie(response, secure=secure)
    cookie = response.headers["set-cookie"]
    # Starlette also sends an Expires date in the past; the rest must match the cookie that was set.
    assert "; ".join(
        sorted(part for part in cookie.split("; ") if not part.startswith("expires="))
    ) == "; ".join(sorted(expected.split("; ")))
