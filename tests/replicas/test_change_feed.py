"""Changes made on one replica reach the other within 500 ms through LISTEN/NOTIFY (issue 15 item 3).

The replicas' revocation snapshot, client cache and key reload are all set to 60 s, so only the change feed
(``db.change_feed``, ``db.change_listener``) can explain an answer that changes sooner. Postgres only.
"""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.change_listener import APPLICATION_NAME
from oauth_service.runtime import Runtime
from tests.bearer import access_token, basic, bearer
from tests.factories import make_client, make_user
from tests.ops.cli_runner import Cli, cli_runner
from tests.ops.signing_keys import preserved_signing_keys
from tests.replicas.conftest import Replica, running_replicas

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]

BOUND = 0.5
LONG = "60"
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def notified(
    db_url: str,
    migrated_engine: AsyncEngine,
    throttle_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica]]:
    """Replicas A and B whose caches and periodic reloads are all 60 s."""
    logs = tmp_path_factory.mktemp("notified")
    with running_replicas(
        db_url,
        throttle_prefix,
        logs,
        OAUTH_REVOCATION_CACHE_TTL=LONG,
        OAUTH_CLIENT_CACHE_TTL=LONG,
        OAUTH_USER_CACHE_TTL=LONG,
        OAUTH_KEY_RELOAD_INTERVAL=LONG,
    ) as pair:
        yield pair


@pytest.fixture
async def a(notified: tuple[Replica, Replica]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=notified[0].url, timeout=15.0) as http:
        yield http


@pytest.fixture
async def b(notified: tuple[Replica, Replica]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=notified[1].url, timeout=15.0) as http:
        yield http


@pytest.fixture
def cli(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    return cli_runner(db_url, capsys, monkeypatch)


async def _backend(runtime: Runtime) -> tuple[str, dict[str, str]]:
    """A user and a confidential client (password, refresh, client credentials); its id and Basic header."""
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    client, secret = await make_client(
        runtime,
        grant_types=("password", "refresh_token", "client_credentials"),
        scopes=("read",),
    )
    assert secret is not None
    return client.client_id, basic(client.client_id, secret)


async def _token(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    form = {"grant_type": "password", "email": EMAIL, "password": PASSWORD}
    response = await http.post("/oauth/token", data=form, headers=auth)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _active(http: httpx.AsyncClient, token: str, auth: dict[str, str]) -> bool:
    response = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert response.status_code == 200
    return response.json()["active"] is True


async def _within(
    condition: Callable[[], Awaitable[bool]], started: float, bound: float = BOUND
) -> float:
    """Poll ``condition`` until true or a generous deadline; return the seconds since ``started``."""
    deadline = started + max(5.0, bound * 4)
    while time.monotonic() < deadline:
        if await condition():
            return time.monotonic() - started
    raise AssertionError("the change never reached the other replica")


async def test_revocation_on_a_is_inactive_at_b_within_bound(
    runtime: Runtime, a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    _, auth = await _backend(runtime)
    token = await _token(a, auth)
    assert await _active(
        b, token, auth
    )  # B has loaded its snapshot: 60 s until the next
    started = time.monotonic()
    revoked = await a.post("/oauth/revoke", data={"token": token}, headers=auth)
    assert revoked.status_code == 200

    async def inactive() -> bool:
        return not await _active(b, token, auth)

    assert await _within(inactive, started) < BOUND


async def test_refresh_reuse_on_a_makes_family_inactive_at_b_within_bound(
    runtime: Runtime, a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    _, auth = await _backend(runtime)
    form = {"grant_type": "password", "email": EMAIL, "password": PASSWORD}
    first = (await a.post("/oauth/token", data=form, headers=auth)).json()
    reuse = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = (await a.post("/oauth/token", data=reuse, headers=auth)).json()
    tokens = (first["access_token"], second["access_token"])
    assert [await _active(b, token, auth) for token in tokens] == [True, True]
    started = time.monotonic()
    replayed = await a.post("/oauth/token", data=reuse, headers=auth)
    assert replayed.json()["error"] == "invalid_grant"

    async def family_inactive() -> bool:
        return not any([await _active(b, token, auth) for token in tokens])

    assert await _within(family_inactive, started) < BOUND


async def test_user_deactivated_on_a_is_refused_at_b_within_bound(
    runtime: Runtime, a: httpx.AsyncClient, b: httpx.AsyncClient, cli: Cli
) -> None:
    _, auth = await _backend(runtime)
    token = await _token(a, auth)
    assert (await b.get("/api/v1/notes", headers=bearer(token))).status_code == 200
    code, _, err = await cli("users", "deactivate", "--email", EMAIL)
    assert code == 0, err
    committed = time.monotonic()  # the CLI returns once it has committed

    async def refused() -> bool:
        notes = await b.get("/api/v1/notes", headers=bearer(token))
        return notes.status_code == 401

    assert await _within(refused, committed) < BOUND
    assert not await _active(b, token, auth)


async def _jwks_kids(http: httpx.AsyncClient) -> set[str]:
    keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
    return {key["kid"] for key in keys}


async def test_keys_rotate_cli_is_in_both_jwks_within_bound(
    database: AsyncEngine, a: httpx.AsyncClient, b: httpx.AsyncClient, cli: Cli
) -> None:
    async with preserved_signing_keys(database):
        code, out, err = await cli("keys", "rotate", "--json")
        assert code == 0, err
        committed = time.monotonic()  # the CLI has committed once it prints
        kid = json.loads(out)["kid"]

        async def published() -> bool:
            return all([kid in await _jwks_kids(http) for http in (a, b)])

        assert await _within(published, committed) < BOUND


async def test_client_secret_rotated_by_cli_is_refused_at_b_within_bound(
    runtime: Runtime, b: httpx.AsyncClient, cli: Cli
) -> None:
    client_id, old = await _backend(runtime)
    cc = {"grant_type": "client_credentials"}
    assert (await b.post("/oauth/token", data=cc, headers=old)).status_code == 200
    code, out, err = await cli("clients", "rotate-secret", client_id, "--json")
    assert code == 0, err
    committed = time.monotonic()
    new = basic(client_id, json.loads(out)["client_secret"])

    async def old_refused() -> bool:
        response = await b.post("/oauth/token", data=cc, headers=old)
        return response.status_code == 401

    assert await _within(old_refused, committed) < BOUND
    assert (await b.post("/oauth/token", data=cc, headers=new)).status_code == 200


async def test_client_deleted_on_a_is_refused_at_b_within_bound(
    runtime: Runtime, a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    client_id, auth = await _backend(runtime)
    cc = {"grant_type": "client_credentials"}
    token = (await b.post("/oauth/token", data=cc, headers=auth)).json()["access_token"]
    assert (await b.get("/api/v1/me", headers=bearer(token))).status_code == 200
    admin, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    admin_token = access_token(runtime, subject=admin.id, scope="admin")
    started = time.monotonic()
    deleted = await a.delete(f"/admin/clients/{client_id}", headers=bearer(admin_token))
    assert deleted.status_code == 204

    async def refused() -> bool:
        me = await b.get("/api/v1/me", headers=bearer(token))
        again = await b.post("/oauth/token", data=cc, headers=auth)
        return me.status_code == 401 and again.status_code == 401

    assert await _within(refused, started) < BOUND


async def test_claims_changed_by_cli_reach_userinfo_at_b_within_bound(
    runtime: Runtime, b: httpx.AsyncClient, cli: Cli
) -> None:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    token = access_token(runtime, subject=user.id, scope="openid profile")
    before = await b.get("/oauth/userinfo", headers=bearer(token))
    assert before.json() == {"sub": user.id, "updated_at": before.json()["updated_at"]}
    code, _, err = await cli("users", "update", "--email", EMAIL, "--name", "Alice L.")
    assert code == 0, err
    committed = time.monotonic()

    async def renamed() -> bool:
        response = await b.get("/oauth/userinfo", headers=bearer(token))
        name: object = response.json().get("name")
        return name == "Alice L."

    assert await _within(renamed, committed) < BOUND


async def _listener_pids(engine: AsyncEngine) -> set[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        )
        return set(rows.scalars())


async def test_listener_killed_reconnects_and_catches_up_what_it_missed(
    runtime: Runtime,
    database: AsyncEngine,
    notified: tuple[Replica, Replica],
    a: httpx.AsyncClient,
    b: httpx.AsyncClient,
) -> None:
    _, auth = await _backend(runtime)
    missed, later = await _token(a, auth), await _token(a, auth)
    assert await _active(b, missed, auth)
    before = await _listener_pids(database)
    assert len(before) >= 2  # A's and B's (and this test process's own app)
    missed_jti = runtime.keys.verify(
        missed,
        issuer=runtime.settings.issuer,
        audience=runtime.settings.resource_audience,
    )["jti"]
    # Kill every listener and, in the same transaction, revoke with plain SQL (no notification): only a
    # catch-up on reconnection can tell B, since its snapshot is good for 60 s.
    async with database.begin() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        )
        await conn.execute(
            text(
                "INSERT INTO revoked_tokens (jti, expires_at, revoked_at)"
                " VALUES (:jti, :exp, :now)"
            ),
            {
                "jti": missed_jti,
                "exp": datetime.now(UTC) + timedelta(minutes=10),
                "now": datetime.now(UTC),
            },
        )
    started = time.monotonic()

    async def caught_up() -> bool:
        return not await _active(b, missed, auth)

    assert await _within(caught_up, started, bound=10.0) < 10.0
    after = await _listener_pids(database)
    assert not after & before  # every listener now on a new connection
    assert "change listener disconnected" in notified[1].log.read_text()
    # And the feed works again.
    started = time.monotonic()
    await a.post("/oauth/revoke", data={"token": later}, headers=auth)

    async def inactive() -> bool:
        return not await _active(b, later, auth)

    assert await _within(inactive, started) < BOUND
