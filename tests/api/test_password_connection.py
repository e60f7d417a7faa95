"""A password check holds no pooled connection while it waits for argon2 (password grant and login form).

The hasher is replaced by one that runs the real argon2 check but first waits at a gate the test opens, so
"while the hash is waiting" is a state the test controls, never a sleep: the test looks at the app's pool
then, and sees the request's connection back in it. In a storm of more waiting password requests than the
pool has connections, a refresh and a client-credentials request still get one. The checks after the gate
opens prove the grant still writes what it issues (refresh token row, upgraded hash, login session).
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from oauth_service.app import create_app
from oauth_service.crypto.passwords import PasswordCheck, PasswordHasher
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_url,
    hidden,
    new_pkce,
)
from tests.conftest import ISSUER, make_settings
from tests.factories import basic_auth, make_client, make_user, queue_pool

TOKEN = "/oauth/token"
# Generous: only reached when a request is stuck waiting for a connection (the failure this file guards).
STUCK = 10.0


class GatedHasher(PasswordHasher):
    """The real argon2 check, held at a gate; it notes how many pooled connections were out on arrival."""

    def __init__(self, pool: QueuePool, *, time_cost: int = 2) -> None:
        super().__init__(time_cost=time_cost, memory_cost=19_456, parallelism=1)
        self._pool = pool
        self.gate = asyncio.Event()
        self.checked_out_on_arrival: list[int] = []
        self._arrived = asyncio.Condition()

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Wait for the gate, then verify for real."""
        async with self._arrived:
            self.checked_out_on_arrival.append(self._pool.checkedout())
            self._arrived.notify_all()
        await self.gate.wait()
        return await super().verify(stored_hash, password)

    async def wait_for_arrivals(self, count: int) -> None:
        """Return once ``count`` checks are waiting at the gate."""
        async with asyncio.timeout(STUCK), self._arrived:
            await self._arrived.wait_for(
                lambda: len(self.checked_out_on_arrival) >= count
            )


async def _checked_out_while_hashing(
    runtime: Runtime,
    hasher: GatedHasher,
    send: Coroutine[Any, Any, httpx.Response],
) -> tuple[int, httpx.Response]:
    """Send a request, read the pool's checked-out count while its hash waits at the gate, then let it finish."""
    request = asyncio.create_task(send)
    try:
        await hasher.wait_for_arrivals(1)
        while_hashing = queue_pool(runtime).checkedout()
    finally:
        hasher.gate.set()
        response = await request
    return while_hashing, response


async def _confidential(runtime: Runtime) -> dict[str, str]:
    client, secret = await make_client(
        runtime, grant_types=("password", "refresh_token", "client_credentials")
    )
    assert secret is not None
    return basic_auth(client.client_id, secret)


async def _count(engine: AsyncEngine, sql: str, **params: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql), params) or 0)


async def test_password_grant_holds_no_connection_while_hashing(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    user, password = await make_user(runtime)
    headers = await _confidential(runtime)
    # Stronger parameters than the stored hash's: the grant also writes the upgraded hash after the check.
    hasher = GatedHasher(queue_pool(runtime), time_cost=3)
    runtime.passwords = hasher
    form = {"grant_type": "password", "email": user.email, "password": password}
    while_hashing, response = await _checked_out_while_hashing(
        runtime, hasher, client.post(TOKEN, data=form, headers=headers)
    )

    assert while_hashing == 0
    assert hasher.checked_out_on_arrival == [0]
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["access_token"], str)
    assert isinstance(body["refresh_token"], str)
    assert (
        await _count(
            database,
            "SELECT count(*) FROM refresh_tokens WHERE user_id = :id",
            id=user.id,
        )
        == 1
    )
    assert (
        await _count(
            database,
            "SELECT count(*) FROM users WHERE id = :id AND password_hash LIKE :prefix",
            id=user.id,
            prefix="$argon2id$v=19$m=19456,t=3,%",
        )
        == 1
    )
    assert queue_pool(runtime).checkedout() == 0


@pytest.fixture
async def small_pool_app(db_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    """An app whose Postgres pool has 2 connections and no overflow (SQLite keeps its default 5 + 10)."""
    settings = make_settings(db_url, db_pool_size=2, db_max_overflow=0)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_password_storm_leaves_connections_for_other_grants(
    small_pool_app: FastAPI,
) -> None:
    runtime: Runtime = small_pool_app.state.runtime
    pool = queue_pool(runtime)
    storm = (
        pool.size() + 15
    )  # more than the pool can lend on either backend (Postgres 2, SQLite 5 + 10)
    user, password = await make_user(runtime)
    headers = await _confidential(runtime)
    hasher = GatedHasher(pool)
    runtime.passwords = hasher
    form = {"grant_type": "password", "email": user.email, "password": password}
    transport = httpx.ASGITransport(app=small_pool_app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        hasher.gate.set()  # a first login, let through, gives the refresh token used below
        first = await http.post(TOKEN, data=form, headers=headers)
        assert first.status_code == 200, first.text
        hasher.gate.clear()
        logins = [
            asyncio.create_task(http.post(TOKEN, data=form, headers=headers))
            for _ in range(storm)
        ]
        try:
            await hasher.wait_for_arrivals(1 + storm)
            assert pool.checkedout() == 0
            async with asyncio.timeout(STUCK):
                refreshed, machine = await asyncio.gather(
                    http.post(
                        TOKEN,
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": first.json()["refresh_token"],
                        },
                        headers=headers,
                    ),
                    http.post(
                        TOKEN,
                        data={"grant_type": "client_credentials"},
                        headers=headers,
                    ),
                )
            # Both answered while every password request was still waiting for its hash.
            assert not any(login.done() for login in logins)
        finally:
            hasher.gate.set()
            answers = await asyncio.gather(*logins, return_exceptions=True)
    assert refreshed.status_code == 200, refreshed.text
    assert isinstance(refreshed.json()["refresh_token"], str)
    assert machine.status_code == 200, machine.text
    statuses = [
        answer.status_code if isinstance(answer, httpx.Response) else answer
        for answer in answers
    ]
    assert statuses == [200] * storm


async def test_login_form_holds_no_connection_while_hashing(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    user, password = await make_user(runtime)
    await make_client(
        runtime,
        name="Photo App",
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
        client_id="photos",
    )
    _verifier, challenge = new_pkce()
    start = await client.get(
        authorize_url(
            response_type="code",
            client_id="photos",
            redirect_uri=CALLBACK,
            scope="read",
            state="st-1",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    assert start.status_code == 302, start.text
    page = await client.get(start.headers["location"])
    assert page.status_code == 200, page.text
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": hidden(page.text, "csrf_token"),
        "email": user.email,
        "password": password,
    }
    hasher = GatedHasher(queue_pool(runtime))
    runtime.passwords = hasher
    while_hashing, response = await _checked_out_while_hashing(
        runtime, hasher, client.post("/oauth/login", data=form)
    )

    assert while_hashing == 0
    assert hasher.checked_out_on_arrival == [0]
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/oauth/consent?")
    assert (
        await _count(
            database,
            "SELECT count(*) FROM login_sessions WHERE user_id = :id",
            id=user.id,
        )
        == 1
    )
