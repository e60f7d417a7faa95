"""The client-credentials grant (RFC 6749 §4.4): a token for the client itself.

Only confidential clients (``allows_public_clients = False``); ``sub`` is the client id; never a refresh token
(RFC 6749 §4.4.3). The scope must lie within the client's registered scopes; without one, all of them.
"""

from typing import ClassVar

from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, TokenRequest, TokenSet
from oauth_service.oauth.outcomes import Grant
from oauth_service.oauth.scopes import narrow_scope


class ClientCredentialsGrant:
    """``grant_type=client_credentials``."""

    grant_type: ClassVar[str] = "client_credentials"
    allows_public_clients: ClassVar[bool] = False

    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        """Resolve the scope; the client is the subject."""
        return Grant(client, None, narrow_scope(request.scope, client.scopes))

    async def issue(self, grant: Grant) -> TokenSet:
        """Mint the access token (no state to change)."""
        return await self._issuer.issue(grant)
