"""The stores of the protocol core (``oauth.storage``), one implementation per backend, chosen once.

``common`` holds the operations both backends run the same way; spending a refresh token or a code differs:
one statement on asyncpg for Postgres (``postgres``), a short transaction for SQLite (``sqlite``). Every
operation is its own unit of work (``units.Database``).
"""

from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db.stores.common import (
    SqlClientStore,
    SqlRevokedTokenStore,
    SqlScopeStore,
    SqlUserStore,
)
from oauth_service.db.stores.postgres import (
    PostgresAuthorizationCodeStore,
    PostgresRefreshTokenStore,
    PostgresUserStore,
)
from oauth_service.db.stores.sqlite import (
    SqliteAuthorizationCodeStore,
    SqliteRefreshTokenStore,
)
from oauth_service.db.stores.units import Database
from oauth_service.oauth.client_cache import CachedClientStore, ClientCache
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.revocation_list import ListedRevokedTokenStore, RevocationList
from oauth_service.oauth.storage import (
    AuthorizationCodeStore,
    ClientStore,
    RefreshTokenStore,
    RevokedTokenStore,
    Stores,
    UserStore,
)


def build_stores(
    engine: AsyncEngine,
    *,
    clock: Clock = utcnow,
    client_cache: ClientCache | None = None,
    revocations: RevocationList | None = None,
) -> Stores:
    """The stores for ``engine``'s backend; clients and revocations through the caches, if given."""
    db = Database(engine)
    refresh_tokens: RefreshTokenStore
    codes: AuthorizationCodeStore
    users: UserStore
    if db.dialect == "postgresql":
        users = PostgresUserStore(db, clock=clock)
        refresh_tokens = PostgresRefreshTokenStore(db, revocations)
        codes = PostgresAuthorizationCodeStore(db, clock=clock, revocations=revocations)
    else:
        users = SqlUserStore(db, clock=clock)
        refresh_tokens = SqliteRefreshTokenStore(db, revocations)
        codes = SqliteAuthorizationCodeStore(db, clock=clock, revocations=revocations)
    clients: ClientStore = SqlClientStore(db)
    revoked: RevokedTokenStore = SqlRevokedTokenStore(db, clock=clock)
    return Stores(
        clients=CachedClientStore(clients, client_cache)
        if client_cache is not None
        else clients,
        users=users,
        scopes=SqlScopeStore(db),
        refresh_tokens=refresh_tokens,
        revoked_tokens=ListedRevokedTokenStore(revoked, revocations)
        if revocations is not None
        else revoked,
        codes=codes,
    )


__all__ = ["Database", "build_stores"]
