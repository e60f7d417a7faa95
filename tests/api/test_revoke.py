"""POST /oauth/revoke (RFC 7009): families, the access-token revocation list, hints, and silent no-ops."""

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.runtime import Runtime
from tests.bearer import Issued, access_token, basic, bearer, password_tokens, refresh
from tests.factories import make_client

REVOKE = "/oauth/revoke"
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}


async def _revoke(
    http: httpx.AsyncClient, issued: Issued, token: str, hint: str | None = None
) -> httpx.Response:
    form = {"token": token} | ({"token_type_hint": hint} if hint else {})
    response = await http.post(REVOKE, data=form, headers=issued.auth)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    return response


async def _me_status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/api/v1/me", headers=bearer(token))).status_code


@pytest.mark.parametrize(
    "hint", [None, "refresh_token", "access_token", "bogus"], ids=str
)
async def test_revoke_refresh_token_revokes_family_and_its_access_tokens(
    client: httpx.AsyncClient, runtime: Runtime, hint: str | None
) -> None:
    first = await password_tokens(client, runtime)
    rotated = (await refresh(client, first)).json()
    second = Issued(
        first.client_id, first.auth, rotated["access_token"], rotated["refresh_token"]
    )
    assert await _me_status(client, second.access_token) == 200
    assert second.refresh_token is not None
    await _revoke(client, second, second.refresh_token, hint)
    response = await refresh(client, second)
    assert (response.status_code, response.json()) == (400, BAD_REFRESH)
    assert await _me_status(client, second.access_token) == 401
    assert await _me_status(client, first.access_token) == 401


@pytest.mark.parametrize(
    "hint", [None, "access_token", "refresh_token", "bogus"], ids=str
)
async def test_revoke_access_token_lists_its_jti_until_expiry(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine, hint: str | None
) -> None:
    issued = await password_tokens(client, runtime)
    claims = runtime.keys.verify(
        issued.access_token,
        issuer=runtime.settings.issuer,
        audience=runtime.settings.issuer,
    )
    await _revoke(client, issued, issued.access_token, hint)
    assert await _me_status(client, issued.access_token) == 401
    async with database.connect() as conn:
        rows = (
            await conn.execute(text("SELECT jti, expires_at FROM revoked_tokens"))
        ).all()
    assert len(rows) == 1
    jti, expires_at = rows[0]
    assert jti == claims["jti"]
    if isinstance(expires_at, str):  # SQLite hands back text through a raw query
        expires_at = datetime.fromisoformat(expires_at).replace(tzinfo=UTC)
    assert int(expires_at.timestamp()) == claims["exp"]
    # Only the access token: the refresh token still works.
    assert (await refresh(client, issued)).status_code == 200


async def test_revoke_twice_is_still_200(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    assert issued.refresh_token is not None
    for token in (
        issued.access_token,
        issued.access_token,
        issued.refresh_token,
        issued.refresh_token,
    ):
        await _revoke(client, issued, token)


@pytest.mark.parametrize(
    "token",
    ["unknown-token", "a.b.c", "e30.e30.", "x" * 4000, "ünïcode"],
    ids=["unknown", "jwt-shaped-garbage", "alg-none-shaped", "huge", "unicode"],
)
async def test_revoke_unknown_or_malformed_token_is_200_without_effect(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine, token: str
) -> None:
    issued = await password_tokens(client, runtime)
    await _revoke(client, issued, token)
    assert await _me_status(client, issued.access_token) == 200
    assert (await refresh(client, issued)).status_code == 200


async def test_revoke_token_signed_by_another_key_is_200_without_effect(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    issued = await password_tokens(client, runtime)
    kid, pem, _ = generate_key("RS256")
    foreign = KeySet(SigningKey.from_pem(kid, "RS256", pem))
    claims = runtime.keys.verify(
        issued.access_token,
        issuer=runtime.settings.issuer,
        audience=runtime.settings.issuer,
    )
    await _revoke(client, issued, foreign.sign(claims))
    async with database.connect() as conn:
        assert await conn.scalar(text("SELECT COUNT(*) FROM revoked_tokens")) == 0
    assert await _me_status(client, issued.access_token) == 200


async def test_revoke_foreign_tokens_is_200_without_effect(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    victim = await password_tokens(client, runtime, client_id="victim")
    _, secret = await make_client(runtime, client_id="attacker")
    assert secret is not None
    assert victim.refresh_token is not None
    attacker = Issued("attacker", basic("attacker", secret), "", None)
    await _revoke(client, attacker, victim.access_token)
    await _revoke(client, attacker, victim.refresh_token)
    assert await _me_status(client, victim.access_token) == 200
    assert (await refresh(client, victim)).status_code == 200


async def test_revoke_by_public_client_with_client_id_only(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_client(
        runtime,
        client_id="spa",
        grant_types=("password", "refresh_token"),
        is_public=True,
    )
    issued = await password_tokens(client, runtime, client_id="conf")
    form = {
        "grant_type": "password",
        "email": "alice@example.com",
        "password": "correct horse battery",
        "client_id": "spa",
    }
    body = (await client.post("/oauth/token", data=form)).json()
    response = await client.post(
        REVOKE, data={"token": body["refresh_token"], "client_id": "spa"}
    )
    assert response.status_code == 200
    assert await _me_status(client, body["access_token"]) == 401
    assert await _me_status(client, issued.access_token) == 200


async def test_revoke_without_client_authentication_is_invalid_client(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    response = await client.post(REVOKE, data={"token": issued.access_token})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
    }
    assert "www-authenticate" not in response.headers
    assert await _me_status(client, issued.access_token) == 200


async def test_revoke_with_wrong_basic_secret_is_401_with_challenge(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    response = await client.post(
        REVOKE,
        data={"token": issued.access_token},
        headers=basic(issued.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert (
        response.headers["www-authenticate"]
        == 'Basic realm="oauth-service", charset="UTF-8"'
    )
    assert await _me_status(client, issued.access_token) == 200


async def test_revoke_without_token_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    response = await client.post(
        REVOKE, data={"token_type_hint": "access_token"}, headers=issued.auth
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Missing 'token' parameter.",
    }


async def test_revoke_with_json_body_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    response = await client.post(
        REVOKE, json={"token": issued.access_token}, headers=issued.auth
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The content type must be application/x-www-form-urlencoded.",
    }


async def test_revoke_hand_signed_token_of_the_caller_lists_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = await password_tokens(client, runtime)
    token = access_token(runtime, subject="svc", client_id=issued.client_id)
    await _revoke(client, issued, token)
    assert await _me_status(client, token) == 401
