"""The resource-server kit: verify this server's access tokens in an API of your own, deployed anywhere.

Nothing here imports a web framework or anything of the server (its database, settings or app wiring):
``verification`` (local, introspection-based and combined verifiers, the ``Authorization`` header's token),
``jwks`` (local verification with the issuer's published keys). ``resource_server.fastapi`` is the FastAPI
adapter: the dependency that demands a token with given scopes, and its RFC 6750 §3 challenges.
"""

from oauth_service.oauth.access_tokens import (
    AccessToken,
    LocalTokenVerifier,
    VerifiedTokenCache,
)
from oauth_service.resource_server.jwks import JwksTokenVerifier
from oauth_service.resource_server.verification import (
    CombinedVerifier,
    IntrospectionVerifier,
    InvalidBearerRequestError,
    TokenVerifier,
    bearer_token_of,
)

__all__ = [
    "AccessToken",
    "CombinedVerifier",
    "IntrospectionVerifier",
    "InvalidBearerRequestError",
    "JwksTokenVerifier",
    "LocalTokenVerifier",
    "TokenVerifier",
    "VerifiedTokenCache",
    "bearer_token_of",
]
