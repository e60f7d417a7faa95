"""Concurrent replays of a used authorization code (RFC 6749 §4.1.2, RFC 9700 §4.2.4) in one process.

Each valid replay revokes what the first redemption issued, on its own connection; replays racing each other must
all get ``invalid_grant`` (the revocation list insert is idempotent), never a 500.
"""

import asyncio

import httpx

from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
)
from tests.factories import make_client, make_user

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


async def test_concurrent_code_replays_are_all_invalid_grant_and_revoke_the_token(
    client: httpx.AsyncClient, runtime: Runtime
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
    final = await authorize_through_pages(client, url, email=EMAIL, password=PASSWORD)
    form = {
        "grant_type": "authorization_code",
        "code": query_of(final.headers["location"])["code"],
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
        "code_verifier": verifier,
    }
    first = await client.post("/oauth/token", data=form)
    assert first.status_code == 200
    replays = await asyncio.gather(
        *(client.post("/oauth/token", data=form) for _ in range(6))
    )
    assert {(r.status_code, r.json()["error"]) for r in replays} == {
        (400, "invalid_grant")
    }
    me = await client.get(
        "/api/v1/me",
        headers={"Authorization": f"Bearer {first.json()['access_token']}"},
    )
    assert me.status_code == 401
