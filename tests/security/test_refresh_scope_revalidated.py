"""A refresh re-checks what may still be granted (RFC 6749 §6, §3.3): ``admin`` only while the user is an admin.

Otherwise a demoted administrator's refresh token family keeps minting ``admin`` access tokens until it expires,
and any API protected with ``require_scopes("admin")`` would accept them.
"""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.runtime import Runtime
from tests.bearer import basic
from tests.factories import make_client, make_user

TOKEN = "/oauth/token"
EMAIL = "root@example.com"
PASSWORD = "correct horse battery"


async def _admin_tokens(
    http: httpx.AsyncClient, runtime: Runtime
) -> tuple[dict[str, str], str]:
    await make_user(runtime, email=EMAIL, password=PASSWORD, is_admin=True)
    _, secret = await make_client(
        runtime,
        client_id="console",
        grant_types=("password", "refresh_token"),
        scopes=("read", "admin"),
    )
    assert secret is not None
    auth = basic("console", secret)
    form = {
        "grant_type": "password",
        "email": EMAIL,
        "password": PASSWORD,
        "scope": "read admin",
    }
    response = await http.post(TOKEN, data=form, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "admin read"
    return auth, response.json()["refresh_token"]


async def _demote(database: AsyncEngine) -> None:
    async with database.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_admin = :no WHERE email = :email"),
            {"no": False, "email": EMAIL},
        )


async def test_refresh_after_demotion_drops_admin_scope(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    auth, refresh_token = await _admin_tokens(client, runtime)
    await _demote(database)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    response = await client.post(TOKEN, data=form, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"
    # The successor does not carry admin either.
    form = {
        "grant_type": "refresh_token",
        "refresh_token": response.json()["refresh_token"],
    }
    again = await client.post(TOKEN, data=form, headers=auth)
    assert (again.status_code, again.json()["scope"]) == (200, "read")


async def test_refresh_asking_admin_after_demotion_is_invalid_scope(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    auth, refresh_token = await _admin_tokens(client, runtime)
    await _demote(database)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "scope": "admin",
    }
    response = await client.post(TOKEN, data=form, headers=auth)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "The requested scope exceeds what may be granted.",
    }
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_by_admin_keeps_admin_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    auth, refresh_token = await _admin_tokens(client, runtime)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    response = await client.post(TOKEN, data=form, headers=auth)
    assert (response.status_code, response.json()["scope"]) == (200, "admin read")
