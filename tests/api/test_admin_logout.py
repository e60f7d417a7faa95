"""Admin API: clients' logout registration, and ending a user's sessions with back-channel logouts.

Deactivating a user, setting a password and ``POST /admin/users/{id}/logout`` each tell the clients of the
user's sessions (Back-Channel Logout 1.0 §2.7), delivered in the background to a loopback receiver.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db.tables import LoginSessionRow
from oauth_service.runtime import Runtime
from tests.backchannel_receiver import (
    Receiver,
    running_receiver,
    verified_logout_token,
)
from tests.bearer import access_token, bearer
from tests.conftest import ISSUER, make_settings
from tests.factories import make_user
from tests.logout_helpers import (
    add_login_session,
    add_refresh_token,
    add_session_client,
    make_logout_client,
    refresh_revoked_at,
)

REGISTRATION = {
    "client_name": "RP",
    "grant_types": ["authorization_code"],
    "redirect_uris": ["https://rp.example/cb"],
    "scope": "openid",
    "client_id": "rp",
    "post_logout_redirect_uris": ["https://rp.example/bye", "com.example.app:/bye"],
    "backchannel_logout_uri": "https://rp.example/backchannel",
    "backchannel_logout_session_required": True,
}


@pytest.fixture
async def app(db_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The app, allowed to reach loopback receivers."""
    application = create_app(
        make_settings(db_url, outbound_allow_private_networks=True)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback back-channel receiver."""
    with running_receiver() as running:
        yield running


@pytest.fixture
async def admin_headers(runtime: Runtime) -> dict[str, str]:
    """An administrator's bearer token."""
    user, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return bearer(access_token(runtime, subject=user.id, scope="admin read"))


async def _eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _sessions(runtime: Runtime, user_id: str) -> int:
    async with runtime.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(LoginSessionRow)
            .where(LoginSessionRow.user_id == user_id)  # type: ignore[arg-type]
        )
    return int(count or 0)


async def test_admin_registers_and_returns_the_logout_settings(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(
        "/admin/clients", json=REGISTRATION, headers=admin_headers
    )
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in REGISTRATION if k != "client_name"} == {
        k: v for k, v in REGISTRATION.items() if k != "client_name"
    }
    fetched = await client.get("/admin/clients/rp", headers=admin_headers)
    del body["client_secret"], body["client_secret_expires_at"]
    assert fetched.json() == body


async def test_admin_patch_changes_and_removes_the_logout_settings(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await client.post("/admin/clients", json=REGISTRATION, headers=admin_headers)
    changed = await client.patch(
        "/admin/clients/rp",
        json={
            "post_logout_redirect_uris": ["http://127.0.0.1:9000/bye"],
            "backchannel_logout_session_required": False,
        },
        headers=admin_headers,
    )
    assert changed.status_code == 200
    body = changed.json()
    assert (
        body["post_logout_redirect_uris"],
        body["backchannel_logout_uri"],
        body["backchannel_logout_session_required"],
    ) == (["http://127.0.0.1:9000/bye"], "https://rp.example/backchannel", False)
    removed = await client.patch(
        "/admin/clients/rp", json={"backchannel_logout_uri": ""}, headers=admin_headers
    )
    assert removed.json()["backchannel_logout_uri"] is None


@pytest.mark.parametrize(
    ("change", "description"),
    [
        (
            {"backchannel_logout_uri": "http://rp.example/bc"},
            "backchannel_logout_uri 'http://rp.example/bc' must use https "
            "(http only for 127.0.0.1, [::1] or localhost)",
        ),
        (
            {"backchannel_logout_uri": "https://rp.example/bc#frag"},
            "backchannel_logout_uri 'https://rp.example/bc#frag' must not contain a fragment",
        ),
        (
            {"backchannel_logout_uri": "com.example.app:/bc"},
            "backchannel_logout_uri 'com.example.app:/bc' must be an absolute https URI",
        ),
        (
            {"backchannel_logout_uri": "https://user@rp.example/bc"},
            "backchannel_logout_uri 'https://user@rp.example/bc' must not contain userinfo",
        ),
        (
            {"post_logout_redirect_uris": ["https://rp.example/bye#x"]},
            "post_logout_redirect_uri 'https://rp.example/bye#x' must not contain a fragment",
        ),
        (
            {"post_logout_redirect_uris": ["/bye"]},
            "post_logout_redirect_uri '/bye' must be absolute",
        ),
        (
            {"post_logout_redirect_uris": ["http://rp.example/bye"]},
            "post_logout_redirect_uri 'http://rp.example/bye' must use https "
            "(http only for 127.0.0.1, [::1] or localhost)",
        ),
    ],
    ids=[
        "http",
        "fragment",
        "not-http",
        "userinfo",
        "logout-fragment",
        "relative",
        "logout-http",
    ],
)
async def test_admin_refuses_bad_logout_uris(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    change: dict[str, object],
    description: str,
) -> None:
    response = await client.post(
        "/admin/clients", json={**REGISTRATION, **change}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
    }
    await client.post("/admin/clients", json=REGISTRATION, headers=admin_headers)
    patched = await client.patch(
        "/admin/clients/rp", json=change, headers=admin_headers
    )
    assert patched.status_code == 400
    assert patched.json() == {
        "error": "invalid_request",
        "error_description": description,
    }


async def _user_in_session(runtime: Runtime, receiver: Receiver) -> tuple[str, str]:
    """A user with one browser session in which ``rp`` (receiving at ``receiver``) got tokens."""
    await make_logout_client(runtime, "rp", backchannel_logout_uri=receiver.url)
    user, _ = await make_user(runtime, email="carol@example.com")
    sid = await add_login_session(runtime, user.id)
    await add_session_client(runtime, sid, "rp", user.id)
    return user.id, sid


async def _told(runtime: Runtime, receiver: Receiver, user_id: str, sid: str) -> None:
    await _eventually(lambda: len(receiver.received) == 1)
    _, claims = verified_logout_token(
        receiver.tokens()[0], runtime.keys.jwks(), issuer=ISSUER, client_id="rp"
    )
    assert (claims["sub"], claims["sid"]) == (user_id, sid)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("deactivate", None),
        ("password", {"password": "a brand new passphrase"}),
    ],
    ids=["deactivate", "password"],
)
async def test_admin_deactivation_and_new_password_send_backchannel_logouts(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    receiver: Receiver,
    path: str,
    payload: dict[str, str] | None,
) -> None:
    user_id, sid = await _user_in_session(runtime, receiver)
    response = await client.post(
        f"/admin/users/{user_id}/{path}", json=payload, headers=admin_headers
    )
    assert response.status_code == 200
    assert await _sessions(runtime, user_id) == 0
    await _told(runtime, receiver, user_id, sid)


async def test_admin_logout_ends_every_session_and_tells_the_clients(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    receiver: Receiver,
) -> None:
    user_id, sid = await _user_in_session(runtime, receiver)
    plain, _ = await add_refresh_token(
        runtime, client_id="rp", user_id=user_id, sid=sid, scope="openid"
    )
    offline, _ = await add_refresh_token(
        runtime, client_id="rp", user_id=user_id, sid=sid, scope="offline_access openid"
    )
    response = await client.post(
        f"/admin/users/{user_id}/logout", headers=admin_headers
    )
    assert response.status_code == 204
    assert response.content == b""
    assert await _sessions(runtime, user_id) == 0
    assert await refresh_revoked_at(runtime, plain) is not None
    assert await refresh_revoked_at(runtime, offline) is None
    await _told(runtime, receiver, user_id, sid)


async def test_admin_logout_of_an_unknown_user_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/admin/users/00000000-0000-0000-0000-000000000000/logout",
        headers=admin_headers,
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "error_description": "No such user.",
    }
