"""Composition root: ``create_app(settings)`` builds the FastAPI app; its lifespan builds long-lived parts.

Nothing is built at import time. ``uvicorn --factory oauth_service.app:create_app`` reads settings from the
environment.
"""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service import __version__
from oauth_service.api import (
    admin,
    authorize,
    consent,
    end_session,
    health,
    introspect,
    login,
    resources,
    revoke,
)
from oauth_service.api.bearer import build_resource_protector, build_token_verifier
from oauth_service.api.cors import PathScopedCORSMiddleware
from oauth_service.api.deps import build_token_dispatcher, build_token_issuer
from oauth_service.api.discovery import router as discovery_router
from oauth_service.api.docs import install_docs
from oauth_service.api.errors import install_error_handlers
from oauth_service.api.metrics_endpoint import install_metrics
from oauth_service.api.middleware import install_middleware
from oauth_service.api.route_table import RouteTable
from oauth_service.api.startup_failure import (
    report_startup_failure_in_one_line,
    startup_problem,
)
from oauth_service.api.token import routes as token_routes
from oauth_service.api.userinfo import routes as userinfo_routes
from oauth_service.crypto.jwt import KeySet
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db.docs_client import ensure_docs_client
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.db.key_rotation import retire_after
from oauth_service.db.keys import ensure_signing_key, load_keyset
from oauth_service.observability.logs import configure_logging
from oauth_service.observability.pool_metrics import instrument_pool
from oauth_service.runtime import Runtime
from oauth_service.runtime.background import start_background
from oauth_service.runtime.limits_throttle import build_throttle
from oauth_service.settings import Settings, load_settings

STATIC_DIR = Path(__file__).parent / "api" / "static"


async def _signing_keys(engine: AsyncEngine, settings: Settings) -> KeySet:
    # Private keys are sealed at rest when OAUTH_KEY_ENCRYPTION_KEY is set; a wrong key fails here.
    cipher = PrivateKeyCipher(settings.key_encryption_key)
    # Retired keys stay published until every token they signed has expired.
    await ensure_signing_key(
        engine,
        settings.signing_alg,
        retire_after=retire_after(settings.signed_token_ttl),
        cipher=cipher,
    )
    return await load_keyset(engine, cipher=cipher)


async def build_runtime(settings: Settings) -> Runtime:
    """Build the process-wide collaborators (engine, hasher, keys, caches)."""
    engine = make_engine(settings)
    try:
        keys = await _signing_keys(engine, settings)
    except BaseException:
        await engine.dispose()  # a failed start-up leaves no connection behind
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        passwords=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            max_threads=settings.password_hash_threads,
        ),
        keys=keys,
        throttle=build_throttle(settings),
    )


def add_routes_first(app: FastAPI, *tables: RouteTable) -> None:
    """Add the routes of ``tables`` to the app's own router, ahead of every route it already has.

    Routes of the app's own router are matched first and directly; an included router is one more entry that
    every request walks into (twice: to match, then to handle). ``RouteTable.add_to`` uses FastAPI's public
    ``add_api_route``; the added routes are then moved to the front of ``app.router.routes`` (Starlette's
    public route list), ahead of ``/openapi.json``, which ``FastAPI()`` adds.
    """
    routes = app.router.routes
    start = len(routes)
    for table in tables:
        table.add_to(app.router)
    added = routes[start:]
    del routes[start:]
    routes[0:0] = added


async def close_runtime(runtime: Runtime) -> None:
    """Release what ``build_runtime`` opened."""
    runtime.passwords.close()
    try:
        await runtime.throttle.aclose()
    finally:
        await runtime.engine.dispose()


def _telemetry(enabled: bool) -> TelemetryConfig:
    """FastAPI's native OpenTelemetry, all on or all off (``OAUTH_OPENTELEMETRY``)."""
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    # A failed start-up an operator can fix, in one line (``api.startup_failure``); uvicorn logs it.
    failures: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        restore_logging = configure_logging(
            settings.log_level,
            flush_interval=settings.log_flush_interval,
            log_format=settings.log_format,
        )
        try:
            runtime = await build_runtime(settings)
        except BaseException as exc:
            restore_logging()  # a failed start-up leaves no logging set-up behind
            if (problem := startup_problem(exc, settings)) is not None:
                failures.append(problem)
            raise
        app.state.runtime = runtime
        app.state.token_issuer = issuer = build_token_issuer(runtime)
        app.state.token_dispatcher = build_token_dispatcher(runtime, issuer)
        # One verifier (and its verified-token cache) for /api/v1, /admin and introspection.
        app.state.token_verifier = verifier = build_token_verifier(runtime)
        app.state.resource_protector = build_resource_protector(verifier)
        if settings.docs_enabled:
            await ensure_docs_client(
                runtime.engine,
                client_id=settings.docs_client_id,
                issuer=settings.issuer,
            )
        stop_pool_metrics = instrument_pool(runtime.engine)
        # Key reload and purge loops; stopped before the pool is disposed.
        app.state.background = background = start_background(runtime)
        # Start-up objects (modules, routes, models) leave the cyclic collector's reach: a full collection
        # walking them stalled every request in flight (docs/performance.md).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await background.stop()
            stop_pool_metrics()
            await close_runtime(runtime)
            restore_logging()

    app = FastAPI(
        title="oauth-service",
        version=__version__,
        description="OAuth 2.0 authorization server: RFC 6749 grants, PKCE, JWT access tokens (RFC 9068).",
        lifespan=lifespan,
        # /docs is served by api.docs with local assets; FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        telemetry=_telemetry(settings.opentelemetry),
    )
    report_startup_failure_in_one_line(app, lambda: failures[-1] if failures else None)
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)
    if settings.cors_origins:
        app.add_middleware(PathScopedCORSMiddleware, origins=settings.cors_origins)
    # The hot routes first, on the app itself: each route or router tried before the match costs microseconds.
    # The health routes too (/healthz, /readyz): gateways probe them often, even while logins saturate
    # the CPUs.
    add_routes_first(
        app,
        token_routes,
        introspect.routes,
        userinfo_routes,
        resources.routes,
        health.routes,
    )
    install_metrics(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(discovery_router)
    app.include_router(revoke.router)
    app.include_router(admin.router)
    app.include_router(authorize.router)
    app.include_router(login.router)
    app.include_router(consent.router)
    app.include_router(end_session.router)
    install_docs(app, settings)
    return app
