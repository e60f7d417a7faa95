"""The OpenID Connect side of authorization request validation (OpenID Connect Core §3.1.2.1).

The core validates ``nonce`` and ``id_token_hint`` (``oauth.authorization``) but signs and verifies nothing
itself: this builds its ``OpenIdPolicy`` over the server's current keys, so a rotated key set is used at once.
"""

from collections.abc import Callable

from oauth_service.oauth.authorization import OpenIdPolicy
from oauth_service.oidc.id_tokens import (
    MAX_NONCE_LENGTH,
    HintVerifier,
    IdTokenHint,
    verify_hint,
)


def openid_policy(keys: Callable[[], HintVerifier], *, issuer: str) -> OpenIdPolicy:
    """The policy whose ``read_hint`` accepts only ID tokens this issuer signed (expired ones too)."""

    def read_hint(token: str) -> IdTokenHint | None:
        return verify_hint(token, keys(), issuer=issuer)

    return OpenIdPolicy(read_hint=read_hint, max_nonce_length=MAX_NONCE_LENGTH)
