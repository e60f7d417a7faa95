"""UserInfo (OpenID Connect Core §5.3): claims by scope, RFC 6750 token transport and challenges, CORS."""

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db import admin
from oauth_service.oauth.models import User
from oauth_service.runtime import Runtime
from tests.bearer import access_token, bearer
from tests.conftest import ISSUER, make_settings

URL = "/oauth/userinfo"
UPDATED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
UPDATED_S = int(UPDATED.timestamp())
ORIGIN = "https://spa.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REALM = 'Bearer realm="oauth-service"'
INVALID_CHALLENGE = (
    f'{REALM}, error="invalid_token", error_description="The access token is invalid."'
)
INVALID = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}
PROFILE: dict[str, str | bool | None] = {
    "name": "Alice Liddell",
    "given_name": "Alice",
    "family_name": "Liddell",
    "preferred_username": "alice",
    "picture": "https://img.example/alice.png",
    "locale": "en-GB",
    "zoneinfo": "Europe/London",
    "email_verified": True,
}
ALL_CLAIMS = {
    "sub": "",
    "name": "Alice Liddell",
    "given_name": "Alice",
    "family_name": "Liddell",
    "preferred_username": "alice",
    "picture": "https://img.example/alice.png",
    "locale": "en-GB",
    "zoneinfo": "Europe/London",
    "updated_at": UPDATED_S,
    "email": "Alice@Example.com",
    "email_verified": True,
}


async def _user(
    runtime: Runtime,
    profile: Mapping[str, str | bool | None] | None = None,
    email: str = "Alice@Example.com",
) -> User:
    async with runtime.sessionmaker() as session:
        user = await admin.create_user(
            session,
            email=email,
            password="correct horse battery",
            hasher=runtime.passwords,
            profile=PROFILE if profile is None else profile,
            clock=lambda: UPDATED,
        )
        await session.commit()
    return user


def _token(runtime: Runtime, user: User, scope: str = "openid profile email") -> str:
    return access_token(runtime, subject=user.id, scope=scope)


def _claims(user: User, *names: str) -> dict[str, object]:
    return {"sub": user.id, **{name: ALL_CLAIMS[name] for name in names}}


PROFILE_NAMES = (
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "locale",
    "zoneinfo",
    "updated_at",
)


@pytest.mark.parametrize(
    ("scope", "names"),
    [
        ("openid", ()),
        ("openid email", ("email", "email_verified")),
        ("openid profile", PROFILE_NAMES),
        ("openid profile email read", (*PROFILE_NAMES, "email", "email_verified")),
    ],
    ids=["openid", "email", "profile", "all"],
)
async def test_userinfo_releases_the_claims_of_the_token_scope(
    client: httpx.AsyncClient, runtime: Runtime, scope: str, names: tuple[str, ...]
) -> None:
    user = await _user(runtime)
    response = await client.get(URL, headers=bearer(_token(runtime, user, scope)))
    assert response.status_code == 200
    assert response.json() == _claims(user, *names)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"


async def test_userinfo_omits_unset_claims_and_says_unverified_email(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime, profile={"locale": "fr"})
    response = await client.get(URL, headers=bearer(_token(runtime, user)))
    assert response.json() == {
        "sub": user.id,
        "locale": "fr",
        "updated_at": UPDATED_S,
        "email": "Alice@Example.com",
        "email_verified": False,
    }


async def test_userinfo_post_with_header_and_with_form_body(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = _token(runtime, user, "openid email")
    expected = _claims(user, "email", "email_verified")
    in_header = await client.post(URL, headers=bearer(token))
    assert (in_header.status_code, in_header.json()) == (200, expected)
    in_body = await client.post(URL, data={"access_token": token})
    assert (in_body.status_code, in_body.json()) == (200, expected)
    # A form without the token: the header is read.
    other_form = await client.post(URL, data={"x": "1"}, headers=bearer(token))
    assert (other_form.status_code, other_form.json()) == (200, expected)


async def test_userinfo_through_authlib_client_header_and_body(
    app: FastAPI, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = {"access_token": _token(runtime, user), "token_type": "Bearer"}
    # Authlib's client is built on httpx2 (its own fork of httpx): the app is mounted with that transport.
    transport = httpx2.ASGITransport(app=app)
    for placement, method in (("header", "GET"), ("body", "POST")):
        async with AsyncOAuth2Client(
            client_id="app",
            token=token,
            token_placement=placement,
            transport=transport,
            base_url=ISSUER,
        ) as rp:
            # RFC 6750 §2.2 wants the form's content type; Authlib appends the token, the caller names the type.
            headers = FORM if placement == "body" else {}
            response = await rp.request(method, f"{ISSUER}{URL}", headers=headers)
        assert response.status_code == 200, placement
        assert response.json() == {**ALL_CLAIMS, "sub": user.id}


async def test_userinfo_without_token_is_bare_challenge(
    client: httpx.AsyncClient,
) -> None:
    for response in (await client.get(URL), await client.post(URL, data={"a": "b"})):
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_token",
            "error_description": "Bearer token required.",
        }
        assert response.headers["www-authenticate"] == REALM


@pytest.mark.parametrize(
    "overrides",
    [None, {"ttl": -3600}, {"iss": "https://other.example"}, {"aud": "someone-else"}],
    ids=["malformed", "expired", "wrong-issuer", "wrong-audience"],
)
async def test_userinfo_with_invalid_token_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime, overrides: dict[str, Any] | None
) -> None:
    user = await _user(runtime)
    token = (
        "not-a-jwt"
        if overrides is None
        else access_token(runtime, subject=user.id, scope="openid", **overrides)
    )
    response = await client.get(URL, headers=bearer(token))
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE
    assert response.headers["cache-control"] == "no-store"


async def test_userinfo_with_revoked_token_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = access_token(runtime, subject=user.id, scope="openid", jti="gone-jti")
    assert (await client.get(URL, headers=bearer(token))).status_code == 200
    expires = datetime.now(UTC) + timedelta(minutes=10)
    await runtime.stores.revoked_tokens.add("gone-jti", expires)
    response = await client.get(URL, headers=bearer(token))
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE


async def test_userinfo_without_openid_scope_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = _token(runtime, user, "profile email read")
    response = await client.get(URL, headers=bearer(token))
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope.",
    }
    assert response.headers["www-authenticate"] == (
        f'{REALM}, error="insufficient_scope", '
        'error_description="The access token lacks a required scope.", scope="openid"'
    )


async def test_userinfo_refuses_token_in_query(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = _token(runtime, user)
    description = "Send the access token in the Authorization header, not in the query."
    for response in (
        await client.get(URL, params={"access_token": token}),
        await client.get(URL, params={"x": "1", "access_token": token}),
        await client.post(URL, params={"access_token": token}, headers=bearer(token)),
    ):
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_request",
            "error_description": description,
        }
        assert response.headers["www-authenticate"] == (
            f'{REALM}, error="invalid_request", error_description="{description}"'
        )


async def test_userinfo_refuses_token_in_header_and_body(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = _token(runtime, user)
    response = await client.post(
        URL, data={"access_token": token}, headers=bearer(token)
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Send the access token by one method only.",
    }


async def test_userinfo_for_deactivated_user_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await _user(runtime)
    token = _token(runtime, user)
    async with runtime.sessionmaker() as session:
        await admin.deactivate_user(session, user_id=user.id)
        await session.commit()
    response = await client.get(URL, headers=bearer(token))
    assert (response.status_code, response.json()) == (401, INVALID)
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE


async def test_userinfo_for_unknown_user_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="no-such-user", scope="openid")
    response = await client.get(URL, headers=bearer(token))
    assert (response.status_code, response.json()) == (401, INVALID)


async def test_userinfo_with_client_credentials_token_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="svc", client_id="svc", scope="openid")
    response = await client.get(URL, headers=bearer(token))
    description = "The access token was not issued for a user."
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": description,
    }
    assert response.headers["www-authenticate"] == (
        f'{REALM}, error="invalid_token", error_description="{description}"'
    )


@pytest.fixture
async def cors_client(
    db_url: str, database: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app = create_app(make_settings(db_url, cors_origins=[ORIGIN]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http, app.state.runtime


async def test_userinfo_cors_preflight_and_simple_request(
    cors_client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    http, runtime = cors_client
    preflight = await http.options(
        URL,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    user = await _user(runtime)
    headers = {"Origin": ORIGIN, **bearer(_token(runtime, user, "openid"))}
    response = await http.get(URL, headers=headers)
    assert (response.status_code, response.json()) == (200, {"sub": user.id})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    refused = await http.get(URL, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in refused.headers
