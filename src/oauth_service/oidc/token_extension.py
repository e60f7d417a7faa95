"""The token endpoint's ID token (OpenID Connect Core §3.1.3.3, §12.2): a ``TokenSetExtension``.

Whatever grant issued the tokens, an ID token is added when the granted scope holds ``openid`` and a user's
sign-in is behind them: the authorization code (with the request's ``nonce``), refresh (the family's
``auth_time`` and session, no ``nonce``) and the password grant. ``at_hash`` binds it to the access token.
"""

from dataclasses import replace

from oauth_service.oauth.models import Client, TokenSet
from oauth_service.oidc.claims import OPENID_SCOPE
from oauth_service.oidc.id_tokens import IdTokenMinter


class IdTokenExtension:
    """Adds ``id_token`` to a token response that needs one."""

    def __init__(self, minter: IdTokenMinter) -> None:
        self._minter = minter

    def __call__(self, tokens: TokenSet, client: Client) -> TokenSet:
        """``tokens`` with an ``id_token`` member when ``openid`` was granted to a signed-in user."""
        signed_in = tokens.authentication
        if signed_in is None or OPENID_SCOPE not in tokens.scope.split(" "):
            return tokens
        id_token = self._minter.mint(
            client.client_id, signed_in, access_token=tokens.access_token
        )
        return replace(tokens, extra={**tokens.extra, "id_token": id_token})
