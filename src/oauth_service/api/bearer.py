"""Bearer-token protection of this server's own APIs (``/api/v1``, ``/admin``), RFC 6750 §2.1 and §3.

One OAuth2 security scheme documents every route in OpenAPI (its flows are filled in by ``api.docs`` from the
settings); ``build_resource_protector`` wires the public ``resource_server.fastapi`` dependency to the server's
keys and revocation list. The list is in memory (``oauth.revocation_list``): a revocation or cut-off made by
this process is honoured at once, one made elsewhere as soon as its notification arrives (``db.change_feed``),
and at most ``settings.revocation_cache_ttl`` seconds later if that notification is lost.
"""

from typing import Annotated

from fastapi import Depends
from fastapi.openapi.models import OAuthFlows
from fastapi.security import OAuth2

from oauth_service.api.deps import StoresDep
from oauth_service.oauth.access_tokens import (
    AccessToken,
    LocalTokenVerifier,
    RevocationCheck,
    Revocations,
    VerifiedTokenCache,
)
from oauth_service.oauth.errors import InsufficientScopeError, InvalidTokenError
from oauth_service.oauth.models import User
from oauth_service.oauth.scopes import ADMIN_SCOPE
from oauth_service.oauth.storage import UserStore
from oauth_service.resource_server.fastapi import (
    Dependency,
    ResourceProtector,
    require_scopes,
)
from oauth_service.runtime import Runtime

OAUTH2_SCHEME = OAuth2(
    flows=OAuthFlows(),
    scheme_name="OAuth2",
    description="Access tokens of this server (JWT, RFC 9068), sent as `Authorization: Bearer`.",
    auto_error=False,
)


def access_token_verifier(
    runtime: Runtime,
    *,
    is_revoked: RevocationCheck | None = None,
    revocation_cache_ttl: float = 0.0,
    cache: VerifiedTokenCache | None = None,
    revocations: Revocations | None = None,
) -> LocalTokenVerifier:
    """A verifier of this server's access tokens, using the runtime's current keys and clock."""
    settings = runtime.settings
    return LocalTokenVerifier(
        lambda: runtime.keys,  # read per call: a key rotation swaps the KeySet
        issuer=settings.issuer,
        audience=settings.resource_audience,
        is_revoked=is_revoked,
        revocation_cache_ttl=revocation_cache_ttl,
        clock=lambda: runtime.clock().timestamp(),
        cache=cache,
        revocations=revocations,
    )


def build_token_verifier(runtime: Runtime) -> LocalTokenVerifier:
    """The process-wide verifier of ``/api/v1``, ``/admin`` and introspection.

    Local JWT verification, the in-memory revocation list with the subject cut-offs, and a cache of verified tokens
    (``settings.verified_token_cache_size`` entries).
    """
    return access_token_verifier(
        runtime,
        revocations=runtime.revocations,
        cache=VerifiedTokenCache(runtime.settings.verified_token_cache_size),
    )


def build_resource_protector(verifier: LocalTokenVerifier) -> ResourceProtector:
    """Build the process-wide protector of this server's own APIs around ``verifier``."""
    return ResourceProtector(verifier, scheme=OAUTH2_SCHEME)


def scoped(*scopes: str) -> Dependency:
    """A dependency demanding a valid access token carrying every one of ``scopes``."""
    return require_scopes(*scopes, scheme=OAUTH2_SCHEME)


ReadTokenDep = Annotated[AccessToken, Depends(scoped("read"))]
WriteTokenDep = Annotated[AccessToken, Depends(scoped("write"))]


async def token_user(users: UserStore, token: AccessToken) -> User | None:
    """Return the active user behind a user token, None for a client token.

    Raises:
        InvalidTokenError: the user was deleted or deactivated after the token was issued.
    """
    if token.is_client_token:
        return None
    user = await users.get(token.subject)
    if user is None or not user.is_active:
        raise InvalidTokenError(detail="the token's user is gone or inactive")
    return user


async def require_admin(
    stores: StoresDep, token: Annotated[AccessToken, Depends(scoped(ADMIN_SCOPE))]
) -> User:
    """Demand the ``admin`` scope held by an active admin user (client tokens never qualify)."""
    user = await token_user(stores.users, token)
    if user is None or not user.is_admin:
        raise InsufficientScopeError(
            "An administrator's access token is required.", scope=ADMIN_SCOPE
        )
    return user


AdminDep = Annotated[User, Depends(require_admin)]
