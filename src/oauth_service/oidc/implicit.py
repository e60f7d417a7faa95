"""The OpenID Connect response types of the authorization endpoint (OpenID Connect Core §3.2.2.5, §3.2.2.10).

``id_token`` returns an ID token alone, carrying the scope's standard claims, since no access token comes with
it to fetch them from UserInfo (§5.4). ``id_token token`` returns an access token and an ID token bound to it by
``at_hash``, without profile claims. Both answer in the fragment with ``state`` and ``iss``, and both ID tokens
carry ``nonce``, ``auth_time``, ``sid`` and ``amr``. Registered in ``oauth.response_types.build_response_types``.
"""

from typing import Protocol

from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.models import Client
from oauth_service.oauth.response_types import (
    AccessTokenMinter,
    AuthorizationResponse,
    ResponseTypeHandler,
    SignIn,
    access_token_params,
    common_params,
)
from oauth_service.oidc.claims import UserProfile, released_claims
from oauth_service.oidc.id_tokens import IdTokenMinter


class ProfileSource(Protocol):
    """Where a user's standard claims are read (``oauth.storage.UserStore`` satisfies it)."""

    async def profile(self, user_id: str) -> UserProfile | None:
        """An active user's standard claims, or None."""
        ...


class IdTokenResponse:
    """``response_type=id_token`` (§3.2.2.5): an ID token with the scope's claims, in the fragment."""

    def __init__(self, id_tokens: IdTokenMinter, profiles: ProfileSource) -> None:
        self._id_tokens = id_tokens
        self._profiles = profiles

    async def __call__(
        self, request: AuthorizationRequest, client: Client, sign_in: SignIn
    ) -> AuthorizationResponse:
        """Mint the ID token and return it in the fragment."""
        profile = await self._profiles.profile(sign_in.user.id)
        # None only if the user was deactivated since the pages checked: then no claim beyond ``sub``.
        claims = released_claims(profile, request.scope) if profile else None
        id_token = self._id_tokens.mint(
            client.client_id, sign_in.authentication(request), claims=claims
        )
        params = {"id_token": id_token, **common_params(request)}
        return AuthorizationResponse(request.redirect_uri, params, fragment=True)


class IdTokenTokenResponse:
    """``response_type=id_token token`` (§3.2.2.5): an access token and an ID token with its ``at_hash``."""

    def __init__(self, id_tokens: IdTokenMinter, minter: AccessTokenMinter) -> None:
        self._id_tokens = id_tokens
        self._minter = minter

    async def __call__(
        self, request: AuthorizationRequest, client: Client, sign_in: SignIn
    ) -> AuthorizationResponse:
        """Mint both tokens and return them in the fragment."""
        token = self._minter.mint_access_token(
            client, sign_in.user.id, request.scope, sign_in.auth_time
        )
        id_token = self._id_tokens.mint(
            client.client_id, sign_in.authentication(request), access_token=token.token
        )
        params = {
            **access_token_params(token, request),
            "id_token": id_token,
            **common_params(request),
        }
        return AuthorizationResponse(request.redirect_uri, params, fragment=True)


def openid_response_types(
    id_tokens: IdTokenMinter, minter: AccessTokenMinter, profiles: ProfileSource
) -> dict[str, ResponseTypeHandler]:
    """The OpenID Connect handlers, keyed by canonical response type."""
    return {
        "id_token": IdTokenResponse(id_tokens, profiles),
        "id_token token": IdTokenTokenResponse(id_tokens, minter),
    }
