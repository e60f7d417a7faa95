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
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service import __version__
from oauth_service.api import (
    admin,
    admin_users,
    authorize,
    consent,
    health,
    introspect,
    login,
    resources,
    revoke,
)
from oauth_service.api.bearer import build_resource_protector, build_token_verifier
from oauth_service.api.cors import PathScopedCORSMiddleware
from oauth_service.api.discovery import router as discovery_router
from oauth_service.api.docs import install_docs
from oauth_service.api.errors import install_error_handlers
from oauth_service.api.metrics import install_metrics, instrument_pool
from oauth_service.api.middleware import install_middleware
from oauth_service.api.token import router as token_router
from oauth_service.background import start_background
from oauth_service.crypto.jwt import KeySet
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db.docs_client import ensure_docs_client
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.db.key_rotation import retire_after
from oauth_service.db.keys import ensure_signing_key, load_keyset
from oauth_service.logs import configure_logging
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings, load_settings
from oauth_service.throttle import build_throttle

STATIC_DIR = Path(__file__).parent / "api" / "static"


async def _signing_keys(engine: AsyncEngine, settings: Settings) -> KeySet:
    # Private keys are sealed at rest when OAUTH_KEY_ENCRYPTION_KEY is set; a wrong key fails here.
    cipher = PrivateKeyCipher(settings.key_encryption_key)
    # Retired keys stay published until every token they signed has expired.
    await ensure_signing_key(
        engine,
        settings.signing_alg,
        retire_after=retire_after(settings.access_token_ttl),
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
        ),
        keys=keys,
        throttle=build_throttle(settings),
    )


async def close_runtime(runtime: Runtime) -> None:
    """Release what ``build_runtime`` opened."""
    await runtime.throttle.aclose()
    await runtime.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (default: from the environment)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        restore_logging = configure_logging(settings.log_level)
        try:
            runtime = await build_runtime(settings)
        except BaseException:
            restore_logging()  # a failed start-up leaves no logging set-up behind
            raise
        app.state.runtime = runtime
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
        # Start-up objects (modules, routes, models: ~150k) leave the cyclic collector's reach; a full
        # collection walking them took ~300 ms and stalled every request in flight (bench/README.md).
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
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)
    install_metrics(app, settings)
    if settings.cors_origins:
        app.add_middleware(PathScopedCORSMiddleware, origins=settings.cors_origins)
    # The hot routes first: each route or router tried before the match costs a few microseconds per request.
    app.include_router(token_router)
    app.include_router(introspect.router)
    app.include_router(resources.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(discovery_router)
    app.include_router(revoke.router)
    app.include_router(admin.router)
    app.include_router(admin_users.router)
    app.include_router(authorize.router)
    app.include_router(login.router)
    app.include_router(consent.router)
    install_docs(app, settings)
    return app
