"""Shared fixtures: one migrated database per backend, a configured app per test, clean tables after each test.

Every test that uses ``db_url`` (directly or through ``settings``/``app``/``client``) runs on SQLite, and also
on Postgres when ``TEST_DATABASE_URL`` is set (``.ci/run`` sets it).
Isolation: the service commits on its own (and some security writes commit on a separate connection), so
instead of a rolled-back outer transaction each test ends by deleting every row it could have written.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.db.engine import make_engine
from oauth_service.db.migrations import upgrade
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings

ISSUER = "http://oauth.test"

# Tables emptied after each test, children first. Scopes are reset to the migration's defaults; signing keys
# are kept so each test does not pay for RSA key generation.
_CLEANED_TABLES = (
    "notes",
    "consents",
    "login_session_clients",
    "backchannel_logouts",
    "login_sessions",
    "authorization_requests",
    "authorization_codes",
    "refresh_tokens",
    "revoked_tokens",
    "subject_cutoffs",
    "clients",
    "users",
)
DEFAULT_SCOPES = (
    "read",
    "write",
    "admin",
    "openid",
    "profile",
    "email",
    "offline_access",
)

BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("TEST_DATABASE_URL") else [])


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Tests marked ``postgres`` run only on the Postgres backend: their SQLite variants are deselected.

    Without ``TEST_DATABASE_URL`` they are all deselected locally; under CI that is an error, so a missing
    database can never turn them into silent skips.
    """
    if "postgres" not in BACKENDS and os.environ.get("CI"):
        postgres_only = [item for item in items if item.get_closest_marker("postgres")]
        if postgres_only:
            raise pytest.UsageError(
                "CI must set TEST_DATABASE_URL: Postgres-only tests would not run"
            )
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec is not None else None
        on_sqlite = backend == "sqlite" or (
            backend is None and "postgres" not in BACKENDS
        )
        if item.get_closest_marker("postgres") and on_sqlite:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _postgres_url() -> str:
    url = os.environ["TEST_DATABASE_URL"]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The database URL of one backend, for the whole session."""
    if request.param == "postgres":
        return _postgres_url()
    path: Path = tmp_path_factory.mktemp("db") / "oauth.db"
    return f"sqlite+aiosqlite:///{path}"


def make_settings(db_url: str, **overrides: object) -> Settings:
    """Test settings: fixed issuer, fast (but OWASP-minimum) argon2, no caches unless a test asks."""
    values: dict[str, object] = {
        "issuer": ISSUER,
        "database_url": db_url,
        "argon2_time_cost": 2,
        "argon2_memory_cost": 19_456,
        "client_cache_ttl": 0,
        "revocation_cache_ttl": 0,
        "cookie_secure": False,
        # The docs client is registered at start-up when /docs is on; tests that need it ask for docs_enabled.
        "docs_enabled": False,
        # Each log line written at once: a batch flushed by the logging thread could land in another test's
        # capture. The batching has its own tests (tests/ops/test_logs.py).
        "log_flush_interval": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def migrated_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Migrate the backend once per session and keep an engine for fixtures and direct SQL."""
    engine = make_engine(make_settings(db_url))
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def database(migrated_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The migrated engine; every row a test wrote is deleted when it ends."""
    yield migrated_engine
    async with migrated_engine.begin() as conn:
        for table in _CLEANED_TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
        await conn.execute(
            text(
                "DELETE FROM scopes WHERE name NOT IN "
                "('read', 'write', 'admin', 'openid', 'profile', 'email', 'offline_access')"
            )
        )


@pytest.fixture
async def es256_keys(database: AsyncEngine) -> AsyncIterator[None]:
    """For a test that starts the app with ``signing_alg="ES256"``: the keys are put back as they were.

    An ES256 start-up retires the RS256 key, and the keys outlive a test (every app of the session shares them).
    """
    from tests.ops.signing_keys import preserved_signing_keys

    async with preserved_signing_keys(database):
        yield


@pytest.fixture
def settings(db_url: str, database: AsyncEngine) -> Settings:
    """Settings bound to the test database."""
    return make_settings(db_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app built by ``create_app`` with its lifespan running (ASGITransport does not run it)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    """The running app's long-lived collaborators."""
    value: Runtime = app.state.runtime
    return value


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, at the issuer's address."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http
