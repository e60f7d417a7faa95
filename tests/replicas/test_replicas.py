"""Two replicas, one database: tokens, rotation, single use and throttling hold across processes.

RFC 6749 §4.1.2 (a code is used once), §10.5; RFC 9700 §4.14.2 (refresh rotation, reuse revokes the family),
§4.16 (brute force). Requests are spread over replicas A and B and fired concurrently.
"""

import asyncio
import base64

import httpx
import pytest
from sqlalchemy import text

from oauth_service.crypto.tokens import token_hash
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
)
from tests.factories import make_client, make_user

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]

TOKEN = "/oauth/token"
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}


async def _backend(runtime: Runtime) -> dict[str, str]:
    """A user and a confidential password/refresh client; returns its Basic header."""
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token"), scopes=("read",)
    )
    raw = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def _password_tokens(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> dict[str, str]:
    form = {
        "grant_type": "password",
        "email": EMAIL,
        "password": PASSWORD,
        "scope": "read",
    }
    response = await http.post(TOKEN, data=form, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_token_issued_by_a_verifies_at_b(
    runtime: Runtime, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient
) -> None:
    auth = await _backend(runtime)
    tokens = await _password_tokens(http_a, auth)
    me = await http_b.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert (me.json()["email"], me.json()["type"]) == (EMAIL, "user")
    introspected = await http_b.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, headers=auth
    )
    assert introspected.json()["active"] is True


async def test_refresh_rotated_at_a_is_dead_at_b(
    runtime: Runtime, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient
) -> None:
    auth = await _backend(runtime)
    old = (await _password_tokens(http_a, auth))["refresh_token"]
    rotated = await http_a.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": old}, headers=auth
    )
    assert rotated.status_code == 200
    reuse = await http_b.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": old}, headers=auth
    )
    assert (reuse.status_code, reuse.json()) == (400, BAD_REFRESH)
    # Reuse revoked the family: the successor minted at A is dead at B as well.
    successor = {
        "grant_type": "refresh_token",
        "refresh_token": rotated.json()["refresh_token"],
    }
    response = await http_b.post(TOKEN, data=successor, headers=auth)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)


async def test_parallel_refreshes_across_replicas_mint_one_family_head(
    runtime: Runtime, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient
) -> None:
    auth = await _backend(runtime)
    old = (await _password_tokens(http_a, auth))["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": old}
    responses = await asyncio.gather(
        *(
            (http_a if i % 2 else http_b).post(TOKEN, data=form, headers=auth)
            for i in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 19, statuses
    assert all(r.json() == BAD_REFRESH for r in responses if r.status_code == 400)
    async with runtime.engine.connect() as conn:
        children = await conn.scalar(
            text(
                "SELECT count(*) FROM refresh_tokens WHERE parent_id ="
                " (SELECT id FROM refresh_tokens WHERE token_hash = :hash)"
            ),
            {"hash": token_hash(old)},
        )
    assert children == 1


async def test_parallel_code_redemptions_across_replicas_have_one_winner(
    runtime: Runtime, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await make_client(
        runtime,
        client_id="mobile",
        is_public=True,
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
    )
    verifier, challenge = new_pkce()
    url = authorize_url(
        response_type="code",
        client_id="mobile",
        redirect_uri=CALLBACK,
        scope="read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    async with httpx.AsyncClient(
        base_url=str(http_a.base_url), timeout=15.0
    ) as browser:
        final = await authorize_through_pages(
            browser, url, email=EMAIL, password=PASSWORD
        )
    code = query_of(final.headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
        "code_verifier": verifier,
    }
    responses = await asyncio.gather(
        *((http_a if i % 2 else http_b).post(TOKEN, data=form) for i in range(10))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 9, statuses
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {
        "invalid_grant"
    }


async def test_throttle_is_shared_between_replicas_through_redis(
    runtime: Runtime, http_a: httpx.AsyncClient, http_b: httpx.AsyncClient
) -> None:
    client, _ = await make_client(runtime, grant_types=("password",), is_public=True)
    await make_user(runtime, email="bob@example.com", password=PASSWORD)
    form = {
        "grant_type": "password",
        "client_id": client.client_id,
        "email": "bob@example.com",
    }
    for http in (http_a, http_b, http_a):  # OAUTH_MAX_FAILED_LOGINS=3
        assert (
            await http.post(TOKEN, data={**form, "password": "wrong"})
        ).status_code == 400
    locked = await http_b.post(TOKEN, data={**form, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json() == {
        "error": "invalid_grant",
        "error_description": "Too many failed attempts; retry later.",
    }
    assert 0 < int(locked.headers["retry-after"]) <= 300
