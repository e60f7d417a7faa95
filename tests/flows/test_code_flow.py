"""Authorization code + PKCE end to end over HTTP: pages → code → /oauth/token, and the code's single use."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
)
from tests.conftest import ISSUER
from tests.factories import make_client, make_user, peak_checkouts

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


async def _setup(runtime: Runtime, *, is_public: bool = True) -> tuple[str, str | None]:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    _client, secret = await make_client(
        runtime,
        client_id="mobile",
        name="Mobile App",
        is_public=is_public,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scopes=("read", "write"),
    )
    return user.id, secret


async def _code(http: httpx.AsyncClient, challenge: str | None, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": "mobile",
        "redirect_uri": CALLBACK,
        "scope": "read write",
        "state": "af0ifjsldkj",
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(extra)
    response = await authorize_through_pages(
        http, authorize_url(**params), email=EMAIL, password=PASSWORD
    )
    assert response.status_code in (302, 303), response.text
    result = query_of(response.headers["location"])
    assert result["state"] == "af0ifjsldkj"
    assert result["iss"] == ISSUER
    return result["code"]


def _exchange_form(code: str, verifier: str | None) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


async def test_code_flow_public_client_with_pkce_issues_tokens(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id, _ = await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    response = await client.post("/oauth/token", data=_exchange_form(code, verifier))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
    }
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        600,
        "read write",
    )
    claims = runtime.keys.verify(
        body["access_token"], issuer=ISSUER, audience=runtime.settings.resource_audience
    )
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (
        user_id,
        "mobile",
        "read write",
    )
    refreshed = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": "mobile",
        },
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_code_flow_confidential_client_with_basic_auth_without_pkce(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _user_id, secret = await _setup(runtime, is_public=False)
    assert secret is not None
    code = await _code(client, None)
    form = _exchange_form(code, None)
    del form["client_id"]
    response = await client.post("/oauth/token", data=form, auth=("mobile", secret))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read write"


async def test_code_flow_wrong_verifier_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    _verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    other, _ = new_pkce()
    response = await client.post("/oauth/token", data=_exchange_form(code, other))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The code_verifier does not match the code_challenge.",
    }


async def test_code_flow_redirect_uri_mismatch_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    form = _exchange_form(code, verifier) | {"redirect_uri": CALLBACK + "?x=1"}
    response = await client.post("/oauth/token", data=form)
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "redirect_uri does not match the authorization request.",
    }


async def test_code_flow_expired_code_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    real_clock = runtime.clock
    runtime.clock = lambda: real_clock() + timedelta(seconds=61)
    try:
        response = await client.post(
            "/oauth/token", data=_exchange_form(code, verifier)
        )
    finally:
        runtime.clock = real_clock
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code expired.",
    }


async def test_code_replay_is_refused_and_revokes_first_tokens(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    first = (
        await client.post("/oauth/token", data=_exchange_form(code, verifier))
    ).json()
    replay = await client.post("/oauth/token", data=_exchange_form(code, verifier))
    assert replay.status_code == 400
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code was already used.",
    }
    refreshed = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "mobile",
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    jti = runtime.keys.verify(
        first["access_token"],
        issuer=ISSUER,
        audience=runtime.settings.resource_audience,
    )["jti"]
    async with database.connect() as conn:
        revoked = (
            (await conn.execute(text("SELECT jti FROM revoked_tokens"))).scalars().all()
        )
    assert jti in revoked


@pytest.mark.postgres
async def test_code_replay_revocation_holds_one_pooled_connection_at_a_time(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The replay's read and the revocations committed on connections of their own never overlap: a burst of
    replays cannot leave every pooled connection waiting for another."""
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    first = await client.post("/oauth/token", data=_exchange_form(code, verifier))
    assert first.status_code == 200
    with peak_checkouts(runtime) as peak:
        replay = await client.post("/oauth/token", data=_exchange_form(code, verifier))
    assert replay.status_code == 400
    assert peak == [1]


async def test_code_replay_with_wrong_verifier_revokes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    first = (
        await client.post("/oauth/token", data=_exchange_form(code, verifier))
    ).json()
    other, _ = new_pkce()
    replay = await client.post("/oauth/token", data=_exchange_form(code, other))
    assert replay.json()["error"] == "invalid_grant"
    async with database.connect() as conn:
        revoked = await conn.scalar(text("SELECT count(*) FROM revoked_tokens"))
    assert revoked == 0
    refreshed = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "mobile",
        },
    )
    assert refreshed.status_code == 200


async def test_code_concurrent_redemptions_have_one_winner(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    verifier, challenge = new_pkce()
    code = await _code(client, challenge)
    responses = await asyncio.gather(
        *(
            client.post("/oauth/token", data=_exchange_form(code, verifier))
            for _ in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400, 400, 400]
    assert all(
        r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400
    )
