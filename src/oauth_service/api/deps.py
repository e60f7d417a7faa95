"""Per-request dependencies, as ``Annotated`` aliases.

``SessionDep`` is one database session per request. Routes that write call ``await session.commit()``
themselves *before* building the response, so a token is never sent for rows that were not committed; whatever
was not committed is rolled back when the request ends. Every dependency here is ``async def``: they do no
I/O, and a plain ``def`` dependency would cost a worker-thread round trip per request.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from oauth_service.db.direct import LazySession
from oauth_service.db.stores import build_stores
from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.grants import GrantConfig, LazyStrategies, strategy_factories
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.storage import Stores
from oauth_service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Return the process-wide runtime built by the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@asynccontextmanager
async def request_session(
    runtime: Runtime, sessions: async_sessionmaker[AsyncSession] | None = None
) -> AsyncIterator[AsyncSession]:
    """One session (of ``sessions``, default the runtime's), opened on first use.

    What was not committed is rolled back at the end. For the hot routes that call it directly (token,
    introspection); ``SessionDep`` gives routes an ordinary session.
    """
    lazy = LazySession(sessions or runtime.sessionmaker)
    try:
        yield cast(AsyncSession, lazy)
    finally:
        await lazy.close()


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Open a session for this request; uncommitted work is rolled back at the end."""
    async with runtime.sessionmaker() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await session.rollback()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def stores_for(runtime: Runtime, session: AsyncSession) -> Stores:
    """The SQL stores bound to ``session``.

    Clients and the access-token revocation list are read through the process's caches (``client_cache_ttl``,
    ``revocation_cache_ttl``), so the hot paths make no database round trip for them.
    """
    return build_stores(
        session,
        runtime.engine,
        clock=runtime.clock,
        client_cache=runtime.client_cache,
        revocations=runtime.revocations,
    )


async def get_stores(runtime: RuntimeDep, session: SessionDep) -> Stores:
    """The SQL stores bound to this request's session (see ``stores_for``)."""
    return stores_for(runtime, session)


StoresDep = Annotated[Stores, Depends(get_stores)]


def token_issuer_for(runtime: Runtime, stores: Stores) -> TokenIssuer:
    """The token issuer, signing with the key set current now."""
    return TokenDispatchers(runtime).issuer_for(stores)


async def get_token_issuer(runtime: RuntimeDep, stores: StoresDep) -> TokenIssuer:
    """The token issuer, signing with the key set current at the start of this request."""
    return token_issuer_for(runtime, stores)


TokenIssuerDep = Annotated[TokenIssuer, Depends(get_token_issuer)]


class TokenDispatchers:
    """Builds the token endpoint's dispatcher of one request, its stores bound to that request's session.

    What comes from the (frozen) settings is worked out once, here: the enabled grants, the grant config, the
    issuer's name, audience and lifetimes. What may be replaced on the runtime while it serves (the key set on a
    reload, the clock, the throttle, the password hasher, the engine) is read on every call, and only the
    strategy of the requested grant type is built (``LazyStrategies``). The app's lifespan builds one
    (``app.state.token_dispatchers``); the token endpoint, the busiest route, calls it directly, because each
    FastAPI dependency node costs tens of microseconds per request (the profile in bench/README.md).
    """

    __slots__ = (
        "_access_ttl",
        "_audience",
        "_config",
        "_enabled",
        "_issuer",
        "_refresh_idle_ttl",
        "_refresh_ttl",
        "_runtime",
    )

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._enabled = frozenset(settings.enabled_grants)
        self._config = GrantConfig(
            refresh_grace=timedelta(seconds=settings.refresh_grace_seconds),
            allow_plain_pkce=settings.allow_plain_pkce,
        )
        self._issuer = settings.issuer
        self._audience = settings.resource_audience
        self._access_ttl = timedelta(seconds=settings.access_token_ttl)
        self._refresh_ttl = timedelta(seconds=settings.refresh_token_ttl)
        self._refresh_idle_ttl = timedelta(seconds=settings.refresh_token_idle_ttl)

    def issuer_for(self, stores: Stores) -> TokenIssuer:
        """The token issuer, signing with the key set current now."""
        runtime = self._runtime
        return TokenIssuer(
            runtime.keys,
            stores.refresh_tokens,
            issuer=self._issuer,
            audience=self._audience,
            access_ttl=self._access_ttl,
            refresh_ttl=self._refresh_ttl,
            refresh_idle_ttl=self._refresh_idle_ttl,
            clock=runtime.clock,
        )

    def __call__(self, session: AsyncSession) -> TokenDispatcher:
        """The dispatcher over the enabled grants, its stores bound to ``session``."""
        runtime = self._runtime
        stores = stores_for(runtime, session)
        strategies = strategy_factories(
            stores=stores,
            issuer=self.issuer_for(stores),
            passwords=runtime.passwords,
            enabled=self._enabled,
            config=self._config,
            clock=runtime.clock,
            throttle=runtime.throttle,
        )
        return TokenDispatcher(
            LazyStrategies(strategies), stores.clients, throttle=runtime.throttle
        )
