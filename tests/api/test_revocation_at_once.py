"""A revocation takes effect in the process that made it on the very next request, whatever path made it.

Issue 15 items 2 and 8b: a code replay, a refresh-token reuse, a user's deactivation or password change and a
client's deletion each end the tokens concerned at ``/api/v1/me``, the notes routes, introspection (RFC 7662
§2.2: ``{"active": false}``) and the ``LocalTokenVerifier``. The snapshot and client cache TTLs are set long
here, so only the process applying its own change at once can explain the answers.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import httpx
import pytest
from fastapi import FastAPI

from oauth_service.app import create_app
from oauth_service.crypto.passwords import PasswordCheck
from oauth_service.db import admin
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.oauth.access_tokens import LocalTokenVerifier
from oauth_service.oauth.errors import InvalidTokenError
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
)
from tests.bearer import Issued, access_token, basic, bearer, password_tokens, refresh
from tests.conftest import make_settings
from tests.factories import make_client, make_user

LONG = 60.0
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
INACTIVE = {"active": False}
Path = Literal["cli", "api"]


@pytest.fixture
async def app(db_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    del settings  # requested for the database fixture's clean-up
    application = create_app(
        make_settings(db_url, revocation_cache_ttl=LONG, client_cache_ttl=LONG)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def resource_server(runtime: Runtime) -> dict[str, str]:
    """Basic credentials of a confidential client that introspects."""
    client, secret = await make_client(runtime, client_id="rs")
    assert secret is not None
    return basic(client.client_id, secret)


@pytest.fixture
async def admin_headers(runtime: Runtime) -> dict[str, str]:
    """An active admin's bearer header."""
    user, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return bearer(access_token(runtime, subject=user.id, scope="admin"))


async def _introspect(
    http: httpx.AsyncClient, token: str, auth: dict[str, str]
) -> dict[str, object]:
    response = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def _verifier_accepts(app: FastAPI, token: str) -> bool:
    verifier: LocalTokenVerifier = app.state.token_verifier
    try:
        await verifier.verify(token)
    except InvalidTokenError:
        return False
    return True


Answers = Callable[[str], Awaitable[tuple[int, int, int, bool, bool]]]


@pytest.fixture
def answers(
    app: FastAPI, client: httpx.AsyncClient, resource_server: dict[str, str]
) -> Answers:
    """How every surface answers a token: /me, GET and POST /notes statuses, whether introspection says active,
    whether the verifier accepts."""

    async def answer(token: str) -> tuple[int, int, int, bool, bool]:
        headers = bearer(token)
        me = await client.get("/api/v1/me", headers=headers)
        listed = await client.get("/api/v1/notes", headers=headers)
        created = await client.post(
            "/api/v1/notes", json={"title": "t"}, headers=headers
        )
        active = (await _introspect(client, token, resource_server))["active"] is True
        return (
            me.status_code,
            listed.status_code,
            created.status_code,
            active,
            await _verifier_accepts(app, token),
        )

    return answer


ACCEPTED = (200, 200, 201, True, True)
REFUSED = (401, 401, 401, False, False)


async def _code_tokens(http: httpx.AsyncClient, runtime: Runtime) -> tuple[str, str]:
    """A public PKCE client's code flow: the code and its verifier, the code not yet redeemed."""
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await make_client(
        runtime,
        client_id="mobile",
        is_public=True,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
    )
    verifier, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "mobile",
        "redirect_uri": CALLBACK,
        "scope": "read write",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = await authorize_through_pages(
        http, authorize_url(**params), email=EMAIL, password=PASSWORD
    )
    return query_of(response.headers["location"])["code"], verifier


async def test_code_replay_makes_first_access_token_inactive_on_next_request(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
) -> None:
    code, verifier = await _code_tokens(client, runtime)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
        "code_verifier": verifier,
    }
    first = (await client.post("/oauth/token", data=form)).json()["access_token"]
    assert await answers(first) == ACCEPTED
    replay = await client.post("/oauth/token", data=form)
    assert replay.json()["error"] == "invalid_grant"
    assert await answers(first) == REFUSED


async def test_refresh_reuse_makes_family_access_tokens_inactive_on_next_request(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
) -> None:
    issued = await password_tokens(client, runtime)
    rotated = await refresh(client, issued)
    assert rotated.status_code == 200
    second = rotated.json()["access_token"]
    assert await answers(second) == ACCEPTED
    reuse = await refresh(client, issued)
    assert reuse.json()["error"] == "invalid_grant"
    for token in (issued.access_token, second):
        assert await answers(token) == REFUSED


async def _deactivate(
    path: Path, http: httpx.AsyncClient, runtime: Runtime, admin_auth: dict[str, str]
) -> None:
    user, _ = await _alice(runtime)
    if path == "api":
        response = await http.post(
            f"/admin/users/{user}/deactivate", headers=admin_auth
        )
        assert response.status_code == 200
        return
    async with runtime.sessionmaker() as session:  # the CLI's code, in this process
        await admin.deactivate_user(session, user_id=user, clock=runtime.clock)
        await session.commit()


async def _set_password(
    path: Path, http: httpx.AsyncClient, runtime: Runtime, admin_auth: dict[str, str]
) -> None:
    user, _ = await _alice(runtime)
    new = {"password": "another long passphrase"}
    if path == "api":
        response = await http.post(
            f"/admin/users/{user}/password", json=new, headers=admin_auth
        )
        assert response.status_code == 200, response.text
        return
    async with runtime.sessionmaker() as session:
        await admin.set_user_password(
            session,
            user_id=user,
            password=new["password"],
            hasher=runtime.passwords,
            clock=runtime.clock,
        )
        await session.commit()


async def _delete_client(
    path: Path, http: httpx.AsyncClient, runtime: Runtime, admin_auth: dict[str, str]
) -> None:
    if path == "api":
        response = await http.delete("/admin/clients/app", headers=admin_auth)
        assert response.status_code == 204
        return
    async with runtime.sessionmaker() as session:
        await admin.delete_client(
            session,
            client_id="app",
            client_cache_ttl=runtime.settings.client_cache_ttl,
            clock=runtime.clock,
        )
        await session.commit()


Change = Callable[[Path, httpx.AsyncClient, Runtime, dict[str, str]], Awaitable[None]]


async def _alice(runtime: Runtime) -> tuple[str, str]:
    async with runtime.sessionmaker() as session:
        user = await admin.find_user(session, email=EMAIL)
    return user.id, user.email


@pytest.mark.parametrize("path", ["cli", "api"])
@pytest.mark.parametrize(
    "change",
    [_deactivate, _set_password, _delete_client],
    ids=["deactivate", "set-password", "delete-client"],
)
async def test_user_or_client_change_refuses_its_tokens_on_next_request(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
    admin_headers: dict[str, str],
    change: Change,
    path: Path,
) -> None:
    issued: Issued = await password_tokens(client, runtime)
    # A client-credentials token: no table records its jti.
    cc = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read write"},
        headers=issued.auth,
    )
    client_token = cc.json()["access_token"]
    assert await answers(issued.access_token) == ACCEPTED
    await change(path, client, runtime, admin_headers)
    assert await answers(issued.access_token) == REFUSED
    if change is _delete_client:
        assert await answers(client_token) == REFUSED
    else:  # the client's own tokens are not the user's
        assert await answers(client_token) == ACCEPTED


@pytest.mark.parametrize("path", ["cli", "api"])
async def test_token_minted_right_after_password_change_is_accepted(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
    admin_headers: dict[str, str],
    path: Path,
) -> None:
    issued = await password_tokens(client, runtime)
    await _set_password(path, client, runtime, admin_headers)
    form = {
        "grant_type": "password",
        "email": EMAIL,
        "password": "another long passphrase",
        "scope": "read write",
    }
    response = await client.post("/oauth/token", data=form, headers=issued.auth)
    assert response.status_code == 200
    fresh = response.json()["access_token"]
    assert await answers(fresh) == ACCEPTED
    assert await answers(issued.access_token) == REFUSED


async def test_client_secret_rotation_keeps_its_tokens_and_drops_old_secret_at_once(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
    admin_headers: dict[str, str],
) -> None:
    issued = await password_tokens(client, runtime)
    cc = {"grant_type": "client_credentials"}
    assert (await client.post("/oauth/token", data=cc, headers=issued.auth)).is_success
    async with runtime.sessionmaker() as session:
        await admin.rotate_client_secret(session, client_id="app", clock=runtime.clock)
        await session.commit()
    stale = await client.post("/oauth/token", data=cc, headers=issued.auth)
    assert stale.status_code == 401
    assert await answers(issued.access_token) == ACCEPTED


# A user's deactivation or password change, made through the CLI's code or the admin API.
EACH_USER_CHANGE = pytest.mark.parametrize(
    ("path", "change"),
    [
        (path, change)
        for change in (_deactivate, _set_password)
        for path in ("cli", "api")
    ],
    ids=[
        f"{path}-{name}"
        for name in ("deactivate", "set-password")
        for path in ("cli", "api")
    ],
)


@EACH_USER_CHANGE
async def test_user_change_ends_codes_issued_before_it(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    change: Change,
    path: Path,
) -> None:
    code, verifier = await _code_tokens(client, runtime)
    await change(path, client, runtime, admin_headers)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
        "code_verifier": verifier,
    }
    response = await client.post("/oauth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@EACH_USER_CHANGE
async def test_user_change_during_the_password_hash_refuses_the_token_minted(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
    admin_headers: dict[str, str],
    change: Change,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = await password_tokens(client, runtime)
    verify = runtime.passwords.verify

    async def slow_verify(stored_hash: str | None, password: str) -> PasswordCheck:
        # The user was read with the old state; the change commits while the hash runs.
        check = await verify(stored_hash, password)
        await asyncio.sleep(0.01)
        await change(path, client, runtime, admin_headers)
        await asyncio.sleep(0.01)
        return check

    monkeypatch.setattr(runtime.passwords, "verify", slow_verify)
    form = {
        "grant_type": "password",
        "email": EMAIL,
        "password": PASSWORD,
        "scope": "read write",
    }
    response = await client.post("/oauth/token", data=form, headers=issued.auth)
    monkeypatch.undo()
    assert response.status_code == 200, response.text
    assert await answers(response.json()["access_token"]) == REFUSED


async def test_client_deleted_elsewhere_gets_no_lasting_token_from_a_stale_cache(
    client: httpx.AsyncClient,
    runtime: Runtime,
    answers: Answers,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = await password_tokens(client, runtime)
    cc = {"grant_type": "client_credentials", "scope": "read write"}
    # This process caches the client (client_cache_ttl=60 s).
    assert (await client.post("/oauth/token", data=cc, headers=issued.auth)).is_success
    # The CLI's deletion in another process: its own engine, so this process's sessions do not apply it. On
    # Postgres its notification would empty the client cache: this process stands for a replica that missed it.
    monkeypatch.setattr(runtime.client_cache, "invalidate", lambda _: None)
    writer = make_settings(db_url, client_cache_ttl=LONG)
    engine = make_engine(writer)
    try:
        async with make_sessionmaker(engine)() as session:
            await admin.delete_client(
                session, client_id="app", client_cache_ttl=writer.client_cache_ttl
            )
            await session.commit()
    finally:
        await engine.dispose()
    stale = await client.post("/oauth/token", data=cc, headers=issued.auth)
    assert stale.status_code == 200  # the cached client still authenticates
    token = stale.json()["access_token"]
    monkeypatch.undo()
    # Once this process has the cut-off (its snapshot reloads, or the notification arrives), the token
    # minted after the deletion is refused with the others.
    runtime.revocations.invalidate()
    assert await answers(token) == REFUSED
    assert await answers(issued.access_token) == REFUSED
