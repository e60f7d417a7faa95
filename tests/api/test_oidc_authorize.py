"""The authorization endpoint's OpenID Connect parameters and response types over HTTP (OIDC Core §3.1.2.1,
§3.2.2; Multiple Response Types §2.1, §5): every rule, its exact error redirect (with ``state`` and ``iss``), and
what the browser session records (``sid``, the clients answered in it)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.api.deps import build_id_token_minter
from oauth_service.app import create_app
from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.crypto.tokens import token_hash
from oauth_service.db.tables import UserRow
from oauth_service.oauth.models import Authentication
from oauth_service.oidc.id_tokens import IdTokenMinter
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    fragment_of,
    hidden,
    new_pkce,
    query_of,
    submit_login,
)
from tests.bearer import access_token
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client, make_user
from tests.fakes import FixedClock
from tests.id_token_checks import published_jwks, validate_id_token

EMAIL = "alice@example.com"
BOB = "bob@example.com"
PASSWORD = "correct horse battery"
NONCE = "n-0S6_WzA2Mj"


async def _clients(runtime: Runtime) -> None:
    await make_client(
        runtime,
        client_id="rp",
        name="Relying Party",
        is_public=True,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scopes=("openid", "profile", "email", "read"),
    )
    await make_client(
        runtime,
        client_id="spa",
        name="Single Page App",
        is_public=True,
        grant_types=("implicit",),
        redirect_uris=(CALLBACK,),
        scopes=("openid", "profile", "email", "read"),
    )


async def _setup(runtime: Runtime) -> str:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    await _clients(runtime)
    return user.id


def rp_url(**extra: str) -> str:
    _verifier, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": CALLBACK,
        "scope": "openid read",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return authorize_url(**params)


def spa_url(**extra: str) -> str:
    params = {
        "response_type": "id_token",
        "client_id": "spa",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "st-1",
        "nonce": NONCE,
    }
    params.update(extra)
    return authorize_url(**{k: v for k, v in params.items() if v})


def _error(error: str, description: str) -> dict[str, str]:
    return {
        "error": error,
        "error_description": description,
        "state": "st-1",
        "iss": ISSUER,
    }


async def _sign_in(http: httpx.AsyncClient, url: str | None = None) -> str:
    """Sign in and consent through the pages; the location the client is sent to."""
    response = await authorize_through_pages(
        http, url or rp_url(), email=EMAIL, password=PASSWORD
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location


@pytest.fixture
def clock(runtime: Runtime) -> FixedClock:
    """A clock pinned to a whole second of real time, moved by the test."""
    pinned = FixedClock(datetime.now(UTC).replace(microsecond=0))
    runtime.clock = pinned
    return pinned


def _hint(runtime: Runtime, subject: str, client_id: str = "rp") -> str:
    return build_id_token_minter(runtime).mint(
        client_id, Authentication(subject, runtime.clock())
    )


# --- parameter rules: errors redirected with state and iss ----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "error", "description"),
    [
        (
            {"nonce": "n" * 513},
            "invalid_request",
            "The nonce parameter is too long.",
        ),
        (
            {"prompt": "none login"},
            "invalid_request",
            "prompt=none cannot be combined with other values.",
        ),
        ({"prompt": "bogus"}, "invalid_request", "Unsupported prompt value."),
        (
            {"prompt": "login bogus"},
            "invalid_request",
            "Unsupported prompt value.",
        ),
        (
            {"max_age": "-1"},
            "invalid_request",
            "max_age must be a non-negative integer.",
        ),
        (
            {"max_age": "1.5"},
            "invalid_request",
            "max_age must be a non-negative integer.",
        ),
        (
            {"max_age": "ten"},
            "invalid_request",
            "max_age must be a non-negative integer.",
        ),
        (
            {"max_age": "1" * 19},
            "invalid_request",
            "max_age must be a non-negative integer.",
        ),
        ({"display": "tv"}, "invalid_request", "Unsupported display value."),
        (
            {"claims": '{"userinfo":{"email":null}}'},
            "invalid_request",
            "The claims parameter is not supported.",
        ),
        (
            {"request": "eyJhbGciOiJub25lIn0.e30."},
            "request_not_supported",
            "The request parameter is not supported.",
        ),
        (
            {"request_uri": "https://app.example/request.jwt"},
            "request_uri_not_supported",
            "The request_uri parameter is not supported.",
        ),
        (
            {"registration": "{}"},
            "registration_not_supported",
            "The registration parameter is not supported.",
        ),
        (
            {"response_mode": "form_post"},
            "invalid_request",
            "Unsupported response_mode.",
        ),
        (
            {"id_token_hint": "not-a-jwt"},
            "invalid_request",
            "id_token_hint is not valid.",
        ),
    ],
    ids=[
        "nonce-too-long",
        "prompt-none-combined",
        "prompt-unknown",
        "prompt-unknown-among-known",
        "max-age-negative",
        "max-age-fraction",
        "max-age-word",
        "max-age-too-many-digits",
        "display-unknown",
        "claims",
        "request",
        "request-uri",
        "registration",
        "response-mode-unknown",
        "id-token-hint-garbage",
    ],
)
async def test_authorize_refuses_bad_openid_parameter_with_redirect(
    client: httpx.AsyncClient,
    runtime: Runtime,
    extra: dict[str, str],
    error: str,
    description: str,
) -> None:
    await _setup(runtime)
    response = await client.get(rp_url(**extra))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    assert query_of(location) == _error(error, description)


async def test_authorize_repeated_nonce_is_named_in_the_error(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    response = await client.get(rp_url(nonce="a") + "&nonce=b")
    assert query_of(response.headers["location"]) == _error(
        "invalid_request", "The 'nonce' parameter is repeated."
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"nonce": "n" * 512},
        {"ui_locales": "fr-CA en"},
        {"acr_values": "urn:mace:incommon:iap:silver"},
        {"display": "popup"},
        {"display": "page"},
        {"max_age": "3600"},
        {"max_age": "1" * 18},
        {"prompt": "login consent"},
        {"response_mode": "query"},
        {"response_mode": "fragment"},
        {"login_hint": EMAIL},
    ],
    ids=[
        "longest-nonce",
        "ui-locales",
        "acr-values",
        "display-popup",
        "display-page",
        "max-age",
        "max-age-capped",
        "prompt-login-consent",
        "response-mode-query",
        "response-mode-fragment",
        "login-hint",
    ],
)
async def test_authorize_accepts_openid_parameter_and_goes_to_login(
    client: httpx.AsyncClient, runtime: Runtime, extra: dict[str, str]
) -> None:
    await _setup(runtime)
    response = await client.get(rp_url(**extra))
    assert response.status_code == 302
    assert response.headers["location"].startswith("/oauth/login?request=")


# --- response types --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "error", "description"),
    [
        (
            {"nonce": ""},
            "invalid_request",
            "The nonce parameter is required with this response_type.",
        ),
        (
            {"response_type": "id_token token", "nonce": ""},
            "invalid_request",
            "The nonce parameter is required with this response_type.",
        ),
        (
            {"scope": "profile"},
            "invalid_request",
            "The id_token response types require the openid scope.",
        ),
        (
            {"response_mode": "query"},
            "invalid_request",
            "response_mode=query is not allowed with this response_type.",
        ),
        (
            {"response_type": "code id_token"},
            "unsupported_response_type",
            "Unsupported response_type.",
        ),
        (
            {"response_type": "id_token", "client_id": "rp"},
            "unauthorized_client",
            "The client may not use this response_type.",
        ),
        (
            {"response_type": "token id_token", "client_id": "rp"},
            "unauthorized_client",
            "The client may not use this response_type.",
        ),
    ],
    ids=[
        "id-token-without-nonce",
        "id-token-token-without-nonce",
        "id-token-without-openid",
        "id-token-in-query",
        "hybrid",
        "code-only-client",
        "code-only-client-reordered",
    ],
)
async def test_authorize_id_token_response_type_errors_go_in_the_fragment(
    client: httpx.AsyncClient,
    runtime: Runtime,
    extra: dict[str, str],
    error: str,
    description: str,
) -> None:
    await _setup(runtime)
    response = await client.get(spa_url(**extra))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "#")
    assert fragment_of(location) == _error(error, description)


async def test_authorize_id_token_with_implicit_disabled_is_unsupported(
    db_url: str, database: AsyncEngine
) -> None:
    app = create_app(
        make_settings(db_url, enabled_grants=["authorization_code", "refresh_token"])
    )
    async with app.router.lifespan_context(app):
        await _setup(app.state.runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            responses = [
                await http.get(spa_url(response_type=kind))
                for kind in ("id_token", "id_token token")
            ]
    for response in responses:
        assert fragment_of(response.headers["location"]) == _error(
            "unsupported_response_type", "Unsupported response_type."
        )


async def _set_profile(database: AsyncEngine, user_id: str, at: datetime) -> None:
    users = UserRow.__table__  # type: ignore[attr-defined]
    async with database.begin() as conn:
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                name="Alice Liddell",
                given_name="Alice",
                preferred_username="alice",
                locale="en-GB",
                email_verified=True,
                updated_at=at,
            )
        )


async def test_id_token_response_carries_the_scopes_claims_in_the_fragment(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    updated = clock.now - timedelta(days=3)
    await _set_profile(database, user_id, updated)
    location = await _sign_in(client, spa_url(scope="openid profile email"))
    assert location.startswith(CALLBACK + "#")
    params = fragment_of(location)
    assert set(params) == {"id_token", "state", "iss"}
    assert (params["state"], params["iss"]) == ("st-1", ISSUER)
    now = int(clock.now.timestamp())
    valid = validate_id_token(
        params["id_token"],
        await published_jwks(client),
        client_id="spa",
        nonce=NONCE,
        implicit=True,
        now=now,
    )
    assert valid.header["typ"] == "JWT"
    async with database.connect() as conn:
        sid = await conn.scalar(text("SELECT sid FROM login_sessions"))
    assert valid.claims == {
        "iss": ISSUER,
        "sub": user_id,
        "aud": "spa",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "nonce": NONCE,
        "amr": ["pwd"],
        "sid": sid,
        "name": "Alice Liddell",
        "given_name": "Alice",
        "preferred_username": "alice",
        "locale": "en-GB",
        "updated_at": int(updated.timestamp()),
        "email": EMAIL,
        "email_verified": True,
    }


async def test_id_token_response_releases_only_what_the_scope_names(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    await _set_profile(database, user_id, clock.now)
    location = await _sign_in(client, spa_url(scope="openid email"))
    valid = validate_id_token(
        fragment_of(location)["id_token"],
        await published_jwks(client),
        client_id="spa",
        nonce=NONCE,
        implicit=True,
        now=int(clock.now.timestamp()),
    )
    assert {"email", "email_verified"} <= set(valid.claims)
    assert not {"name", "given_name", "locale", "updated_at"} & set(valid.claims)


async def test_id_token_token_response_binds_the_access_token_and_has_no_profile(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    await _set_profile(database, user_id, clock.now)
    # Space-separated values compare as a set: "token id_token" is "id_token token".
    url = spa_url(response_type="token id_token", scope="openid profile read")
    params = fragment_of(await _sign_in(client, url))
    assert set(params) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "id_token",
        "state",
        "iss",
    }
    assert (params["token_type"], params["expires_in"], params["scope"]) == (
        "Bearer",
        "600",
        "openid profile read",
    )
    valid = validate_id_token(
        params["id_token"],
        await published_jwks(client),
        client_id="spa",
        nonce=NONCE,
        access_token=params["access_token"],
        implicit=True,
        now=int(clock.now.timestamp()),
    )
    assert set(valid.claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "amr",
        "sid",
        "at_hash",
    }
    claims = runtime.keys.verify(
        params["access_token"],
        issuer=ISSUER,
        audience=runtime.settings.resource_audience,
    )
    assert (claims["sub"], claims["client_id"]) == (user_id, "spa")


async def test_code_with_response_mode_fragment_answers_in_the_fragment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    location = await _sign_in(client, rp_url(response_mode="fragment"))
    assert location.startswith(CALLBACK + "#")
    assert set(fragment_of(location)) == {"code", "state", "iss"}


async def test_error_with_response_mode_fragment_goes_in_the_fragment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    response = await client.get(rp_url(response_mode="fragment", prompt="none"))
    assert fragment_of(response.headers["location"]) == _error(
        "login_required", "The user is not signed in."
    )


# --- prompt, max_age ---------------------------------------------------------------------------------------


async def test_prompt_none_without_session_is_login_required_for_id_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    response = await client.get(spa_url(prompt="none"))
    assert fragment_of(response.headers["location"]) == _error(
        "login_required", "The user is not signed in."
    )


async def test_prompt_none_with_session_answers_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    await _sign_in(client, spa_url())
    response = await client.get(spa_url(prompt="none", state="silent"))
    assert response.status_code == 302
    params = fragment_of(response.headers["location"])
    assert set(params) == {"id_token", "state", "iss"}
    assert params["state"] == "silent"


@pytest.mark.parametrize("prompt", ["login", "select_account"])
async def test_prompt_login_or_select_account_asks_to_sign_in_again(
    client: httpx.AsyncClient, runtime: Runtime, clock: FixedClock, prompt: str
) -> None:
    await _setup(runtime)
    await _sign_in(client)
    clock.advance(seconds=1)
    response = await client.get(rp_url(prompt=prompt))
    assert response.headers["location"].startswith("/oauth/login?request=")
    login = await submit_login(client, response.headers["location"], EMAIL, PASSWORD)
    final = await client.get(login.headers["location"])
    assert final.status_code == 302
    assert set(query_of(final.headers["location"])) == {"code", "state", "iss"}


async def test_max_age_zero_always_asks_to_sign_in(
    client: httpx.AsyncClient, runtime: Runtime, clock: FixedClock
) -> None:
    await _setup(runtime)
    await _sign_in(client)
    clock.advance(seconds=1)
    response = await client.get(rp_url(max_age="0"))
    assert response.headers["location"].startswith("/oauth/login?request=")
    login = await submit_login(client, response.headers["location"], EMAIL, PASSWORD)
    final = await client.get(login.headers["location"])
    assert final.status_code == 302
    assert set(query_of(final.headers["location"])) == {"code", "state", "iss"}


async def test_max_age_exceeded_by_the_session_asks_to_sign_in(
    client: httpx.AsyncClient, runtime: Runtime, clock: FixedClock
) -> None:
    await _setup(runtime)
    await _sign_in(client)
    clock.advance(seconds=120)
    fresh_enough = await client.get(rp_url(max_age="600"))
    assert set(query_of(fresh_enough.headers["location"])) == {"code", "state", "iss"}
    too_old = await client.get(rp_url(max_age="60"))
    assert too_old.headers["location"].startswith("/oauth/login?request=")
    silent = await client.get(rp_url(max_age="60", prompt="none"))
    assert query_of(silent.headers["location"]) == _error(
        "login_required", "The sign-in is older than max_age allows."
    )


# --- login_hint --------------------------------------------------------------------------------------------


async def test_login_hint_prefills_the_email(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    start = await client.get(rp_url(login_hint=EMAIL))
    page = await client.get(start.headers["location"])
    assert page.status_code == 200
    assert f'name="email" type="email" value="{EMAIL}"' in page.text


async def test_login_hint_is_escaped_in_the_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    start = await client.get(rp_url(login_hint='x"><script>alert(1)</script>'))
    page = await client.get(start.headers["location"])
    assert "<script>alert(1)" not in page.text
    assert 'value="x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text


async def test_login_page_without_login_hint_has_empty_email(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    start = await client.get(rp_url())
    page = await client.get(start.headers["location"])
    assert 'name="email" type="email" value=""' in page.text


# --- id_token_hint -----------------------------------------------------------------------------------------


async def test_id_token_hint_of_the_signed_in_user_with_prompt_none_answers(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id = await _setup(runtime)
    await _sign_in(client)
    response = await client.get(
        rp_url(prompt="none", id_token_hint=_hint(runtime, user_id))
    )
    assert set(query_of(response.headers["location"])) == {"code", "state", "iss"}


async def test_expired_id_token_hint_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id = await _setup(runtime)
    await _sign_in(client)
    long_ago = runtime.clock() - timedelta(days=2)
    expired = IdTokenMinter(
        lambda: runtime.keys,
        issuer=ISSUER,
        ttl=timedelta(seconds=60),
        clock=lambda: long_ago,
    ).mint("rp", Authentication(user_id, long_ago))
    response = await client.get(rp_url(prompt="none", id_token_hint=expired))
    assert set(query_of(response.headers["location"])) == {"code", "state", "iss"}


def _forged(runtime: Runtime, subject: str) -> str:
    """Claims we would sign, under our kid, signed by a key that is not ours."""
    _kid, pem, _public = generate_key("RS256")
    impostor = KeySet(SigningKey.from_pem(runtime.keys.signing.kid, "RS256", pem))
    now = int(runtime.clock().timestamp())
    claims = {"iss": ISSUER, "sub": subject, "aud": "rp", "iat": now, "exp": now + 60}
    return impostor.sign(claims, typ="JWT")


def _other_issuer(runtime: Runtime, subject: str) -> str:
    return IdTokenMinter(
        lambda: runtime.keys, issuer="http://evil.test", ttl=timedelta(minutes=5)
    ).mint("rp", Authentication(subject, runtime.clock()))


@pytest.mark.parametrize(
    ("make_hint", "description"),
    [
        (_forged, "id_token_hint is not valid."),
        (_other_issuer, "id_token_hint is not valid."),
        (
            lambda runtime, subject: access_token(runtime, subject=subject),
            "id_token_hint is not valid.",
        ),
        (
            lambda runtime, subject: _hint(runtime, subject, "other-client"),
            "id_token_hint was not issued to this client.",
        ),
    ],
    ids=["forged", "other-issuer", "access-token", "other-client"],
)
async def test_unusable_id_token_hint_is_invalid_request(
    client: httpx.AsyncClient,
    runtime: Runtime,
    make_hint: Any,
    description: str,
) -> None:
    user_id = await _setup(runtime)
    response = await client.get(rp_url(id_token_hint=make_hint(runtime, user_id)))
    assert query_of(response.headers["location"]) == _error(
        "invalid_request", description
    )


async def test_id_token_hint_of_another_user_with_prompt_none_is_login_required(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    bob, _ = await make_user(runtime, email=BOB, password=PASSWORD)
    await _sign_in(client)
    response = await client.get(
        rp_url(prompt="none", id_token_hint=_hint(runtime, bob.id))
    )
    assert query_of(response.headers["location"]) == _error(
        "login_required", "The signed-in user is not the one id_token_hint names."
    )


async def test_id_token_hint_without_session_and_prompt_none_is_login_required(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id = await _setup(runtime)
    response = await client.get(
        rp_url(prompt="none", id_token_hint=_hint(runtime, user_id))
    )
    assert query_of(response.headers["location"]) == _error(
        "login_required", "The user is not signed in."
    )


async def test_id_token_hint_of_another_user_asks_to_sign_in(
    client: httpx.AsyncClient, runtime: Runtime, clock: FixedClock
) -> None:
    """Without prompt=none a mismatch is a sign-in page; whoever signs in then is the answer."""
    await _setup(runtime)
    bob, _ = await make_user(runtime, email=BOB, password=PASSWORD)
    await _sign_in(client)
    clock.advance(seconds=1)
    response = await client.get(rp_url(id_token_hint=_hint(runtime, bob.id)))
    assert response.headers["location"].startswith("/oauth/login?request=")
    login = await submit_login(client, response.headers["location"], BOB, PASSWORD)
    assert login.status_code == 303
    consent = await client.get(login.headers["location"])
    assert consent.status_code == 200
    assert BOB in consent.text
    final = await client.post(
        "/oauth/consent",
        data={
            "request": hidden(consent.text, "request"),
            "csrf_token": hidden(consent.text, "csrf_token"),
            "decision": "approve",
        },
    )
    assert set(query_of(final.headers["location"])) == {"code", "state", "iss"}


# --- the browser session's sid and the clients answered in it ----------------------------------------------


async def _session_rows(database: AsyncEngine) -> tuple[list[Any], list[Any]]:
    async with database.connect() as conn:
        sessions = (
            await conn.execute(text("SELECT sid, user_id FROM login_sessions"))
        ).all()
        clients = (
            await conn.execute(
                text(
                    "SELECT sid, client_id, user_id FROM login_session_clients "
                    "ORDER BY client_id"
                )
            )
        ).all()
    return [tuple(r) for r in sessions], [tuple(r) for r in clients]


async def test_login_session_gets_a_fresh_opaque_sid(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    await _sign_in(client)
    async with database.connect() as conn:
        first = await conn.scalar(text("SELECT sid FROM login_sessions"))
    assert isinstance(first, str)
    assert len(first) >= 22
    assert all(c.isalnum() or c in "-_" for c in first)
    raw = client.cookies["oauth_session"].rsplit(".", 1)[0]
    assert first != raw
    assert first != token_hash(raw)
    sessions, _clients = await _session_rows(database)
    assert sessions == [(first, user_id)]


async def test_each_response_records_the_client_in_the_session_once(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    user_id = await _setup(runtime)
    await _sign_in(client, rp_url(nonce=NONCE))
    sessions, clients = await _session_rows(database)
    sid = sessions[0][0]
    assert clients == [(sid, "rp", user_id)]
    again = await client.get(rp_url())
    assert again.status_code == 302
    await _sign_in(client, spa_url())
    _sessions, clients = await _session_rows(database)
    assert clients == [(sid, "rp", user_id), (sid, "spa", user_id)]


async def test_code_keeps_the_nonce_and_the_sessions_sid(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    await _setup(runtime)
    location = await _sign_in(client, rp_url(nonce=NONCE))
    code = query_of(location)["code"]
    async with database.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT c.nonce, c.sid = s.sid FROM authorization_codes c, login_sessions s "
                    "WHERE c.code_hash = :h"
                ),
                {"h": token_hash(code)},
            )
        ).one()
    assert (row[0], bool(row[1])) == (NONCE, True)
