"""The built-in public client of the ``/docs`` page, registered idempotently at start-up.

A public client (RFC 6749 §2.1; no secret, so PKCE is required for its code flow, RFC 7636) allowed the
authorization code, implicit, password and refresh grants, with the single redirect URI
``<issuer>/docs/oauth2-redirect``. The issuer is operator configuration, so the URI is trusted as is (it may be
plain http on a development host). Every replica runs this; a concurrent insert by another replica is fine.
"""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from oauth_service.db.mapping import join_set, split_set
from oauth_service.db.tables import ClientRow, ScopeRow
from oauth_service.oauth.clock import Clock, utcnow

DOCS_GRANTS = ("authorization_code", "implicit", "password", "refresh_token")
DOCS_SCOPES = ("openid", "profile", "email", "read", "write", "admin")


def docs_redirect_uri(issuer: str) -> str:
    """The Swagger UI OAuth2 redirect page of this deployment."""
    return f"{issuer}/docs/oauth2-redirect"


async def _upsert(
    session: AsyncSession, client_id: str, redirect_uri: str, clock: Clock
) -> None:
    scopes = set(
        await session.scalars(
            select(col(ScopeRow.name)).where(col(ScopeRow.name).in_(DOCS_SCOPES))
        )
    )
    row = await session.get(ClientRow, client_id)
    now = clock()
    if row is None:
        session.add(
            ClientRow(
                client_id=client_id,
                secret_hash=None,
                name="API docs (Swagger UI)",
                is_public=True,
                grant_types=join_set(DOCS_GRANTS),
                redirect_uris=[redirect_uri],
                scopes=join_set(scopes),
                token_endpoint_auth_method="none",  # noqa: S106 - a method name, not a secret
                is_first_party=False,
                created_at=now,
                updated_at=now,
            )
        )
    elif (
        row.redirect_uris != [redirect_uri]
        or not row.is_public
        or not scopes <= split_set(row.scopes)
    ):
        # The issuer changed, someone edited the client, or an upgrade added scopes (OpenID Connect's): the
        # docs page must keep working, publicly, with every scope it offers.
        row.redirect_uris = [redirect_uri]
        row.is_public = True
        row.secret_hash = None
        row.token_endpoint_auth_method = "none"
        row.scopes = join_set(split_set(row.scopes) | scopes)
        row.updated_at = now
    await session.commit()


async def ensure_docs_client(
    engine: AsyncEngine, *, client_id: str, issuer: str, clock: Clock = utcnow
) -> None:
    """Create the docs client when missing, or point it back at this issuer's redirect URI."""
    redirect_uri = docs_redirect_uri(issuer)
    for _ in range(2):
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                await _upsert(session, client_id, redirect_uri, clock)
            return
        except IntegrityError:
            continue  # another replica inserted it first; check it again
