"""Per-request dependencies, as ``Annotated`` aliases, and the token endpoint's collaborators built once.

``SessionDep`` is one database session per request, for the pages' and the admin API's own tables. Routes that
write call ``await session.commit()`` themselves *before* building the response, so a response never reports
rows that were not committed. The protocol core's stores are process-wide (``Runtime.stores``): each of their
operations is its own unit of work. Every dependency here is ``async def``: they do no I/O, and a plain
``def`` dependency would cost a worker-thread round trip per request.
"""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from oauth_service.crypto.passwords import PasswordCheck
from oauth_service.oauth.dispatcher import TokenDispatcher
from oauth_service.oauth.grants import GrantConfig, build_strategies
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.storage import Stores
from oauth_service.oidc.id_tokens import IdTokenMinter
from oauth_service.oidc.token_extension import IdTokenExtension
from oauth_service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Return the process-wide runtime built by the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Open a session for this request; uncommitted work is rolled back at the end."""
    async with runtime.sessionmaker() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await session.rollback()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_stores(runtime: RuntimeDep) -> Stores:
    """The protocol core's stores (process-wide; clients and revocations read through the caches)."""
    return runtime.stores


StoresDep = Annotated[Stores, Depends(get_stores)]


async def get_token_issuer(request: Request) -> TokenIssuer:
    """The token issuer the lifespan built (``build_token_issuer``)."""
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer


TokenIssuerDep = Annotated[TokenIssuer, Depends(get_token_issuer)]


class _RuntimePasswords:
    """The runtime's password hasher, looked up at each check (a test may replace it while the app runs)."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Verify with the runtime's current hasher."""
        return await self._runtime.passwords.verify(stored_hash, password)


def build_token_issuer(runtime: Runtime) -> TokenIssuer:
    """The token issuer; the key set and the clock are read from the runtime at each use."""
    settings = runtime.settings

    def now() -> datetime:
        return runtime.clock()

    return TokenIssuer(
        lambda: runtime.keys,
        runtime.stores.refresh_tokens,
        issuer=settings.issuer,
        audience=settings.resource_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl),
        refresh_idle_ttl=timedelta(seconds=settings.refresh_token_idle_ttl),
        clock=now,
    )


def build_token_dispatcher(runtime: Runtime, issuer: TokenIssuer) -> TokenDispatcher:
    """The token endpoint's dispatcher over the enabled grants (built once; its strategies are stateless)."""
    settings = runtime.settings

    def now() -> datetime:
        return runtime.clock()

    strategies = build_strategies(
        stores=runtime.stores,
        issuer=issuer,
        passwords=_RuntimePasswords(runtime),
        enabled=frozenset(settings.enabled_grants),
        config=GrantConfig(
            refresh_grace=timedelta(seconds=settings.refresh_grace_seconds),
            allow_plain_pkce=settings.allow_plain_pkce,
        ),
        clock=now,
        throttle=runtime.throttle,
    )
    return TokenDispatcher(
        strategies,
        runtime.stores.clients,
        throttle=runtime.throttle,
        extensions=[IdTokenExtension(build_id_token_minter(runtime))],
    )


def build_id_token_minter(runtime: Runtime) -> IdTokenMinter:
    """The ID-token minter; the key set and the clock are read from the runtime at each use."""

    def now() -> datetime:
        return runtime.clock()

    return IdTokenMinter(
        lambda: runtime.keys,
        issuer=runtime.settings.issuer,
        ttl=timedelta(seconds=runtime.settings.id_token_ttl),
        clock=now,
    )
