"""The token half of the authorization code grant (RFC 6749 §4.1.3, §4.1.4, §10.5; RFC 7636 §4.5, §4.6).

``validate`` checks, in order: the code exists and belongs to the authenticated client, ``redirect_uri`` equals
the one sent to the authorization endpoint, and PKCE (public clients must have used it; a verifier for a code
issued without a challenge is a downgrade attempt, RFC 9700 §4.8.2). Only a redemption that passes all of
these and finds the code already used counts as a replay: it revokes what the first redemption issued (on its
own connection, before raising). A replay with bad client auth or a bad verifier is refused without revoking
anything, so an attacker holding a stolen code cannot use it to log the real client out.

``issue`` mints, then consumes the code with a conditional update (single use under concurrency) that records the
access token's ``jti`` and the refresh family it starts and stores the refresh token in the same write. A refresh token is issued only when the client is
registered for the ``refresh_token`` grant and the server enables it.
"""

from typing import ClassVar

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth import pkce
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.ids import time_ordered_uuid
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, Grant, TokenRequest, TokenResponse
from oauth_service.oauth.storage import (
    AuthorizationCodeStore,
    CodeRecord,
    NewRefreshToken,
    RefreshTokenStore,
    UserStore,
)
from oauth_service.observability.logs import audit

CODE_USED = "The authorization code was already used."


class AuthorizationCodeGrant:
    """``grant_type=authorization_code``."""

    grant_type: ClassVar[str] = "authorization_code"
    allows_public_clients: ClassVar[bool] = True

    def __init__(
        self,
        codes: AuthorizationCodeStore,
        refresh_tokens: RefreshTokenStore,
        users: UserStore,
        issuer: TokenIssuer,
        *,
        allow_plain_pkce: bool = False,
        refresh_enabled: bool = True,
        clock: Clock = utcnow,
    ) -> None:
        self._codes = codes
        self._refresh_tokens = refresh_tokens
        self._users = users
        self._issuer = issuer
        self._allow_plain = allow_plain_pkce
        self._refresh_enabled = refresh_enabled
        self._clock = clock

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        """Check the code's bindings and PKCE; a valid replay revokes what the code issued."""
        code = request.require("code")
        as_of = self._clock()  # before the code and its user are read (``Grant.as_of``)
        record = await self._codes.get(token_hash(code))
        if record is None or record.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is invalid.")
        _check_redirect_uri(record, request.redirect_uri, client)
        self._check_pkce(record, request.code_verifier, client)
        if record.used_at is not None:
            await self._revoke_replay(record)
            raise InvalidGrantError(CODE_USED)
        if record.expires_at <= self._clock():
            raise InvalidGrantError("The authorization code expired.")
        user = record.user or await self._users.get(record.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError("The authorization code is invalid.")
        return Grant(
            client=client,
            subject=record.user_id,
            scope=record.scope,
            with_refresh=self._refresh_enabled
            and "refresh_token" in client.grant_types,
            auth_time=record.auth_time,
            family_id=time_ordered_uuid(),
            code_hash=record.code_hash,
            as_of=as_of,
        )

    async def issue(self, grant: Grant) -> TokenResponse:
        """Consume the code atomically, recording what it issues, then mint."""
        assert grant.code_hash is not None  # noqa: S101 - set by validate
        assert grant.family_id is not None  # noqa: S101
        access = self._issuer.mint_access_token(
            grant.client, grant.subject, grant.scope, grant.auth_time, grant.as_of
        )
        raw: str | None = None
        refresh: NewRefreshToken | None = None
        if grant.with_refresh:
            raw, refresh = self._issuer.new_refresh_token(grant, access)
        # The code is consumed and its refresh token stored together: never one without the other.
        consumed = await self._codes.consume(
            grant.code_hash,
            self._clock(),
            family_id=grant.family_id,
            access_jti=access.jti,
            access_expires_at=access.expires_at,
            refresh=refresh,
        )
        if not consumed:
            # A concurrent redemption won the conditional update; this one gets nothing.
            raise InvalidGrantError(CODE_USED)
        return self._issuer.response(access, grant.scope, raw)

    def _check_pkce(
        self, record: CodeRecord, verifier: str | None, client: Client
    ) -> None:
        """RFC 7636 §4.6, plus the downgrade rule of RFC 9700 §4.8.2."""
        if record.code_challenge is None or record.code_challenge_method is None:
            if verifier is not None:
                raise InvalidGrantError(
                    "code_verifier sent for a code issued without code_challenge."
                )
            if client.is_public:
                raise InvalidGrantError("PKCE is required for public clients.")
            return
        if verifier is None:
            raise InvalidGrantError("Missing 'code_verifier' parameter.")
        if not pkce.is_valid_verifier(verifier):
            raise InvalidGrantError("The code_verifier is malformed.")
        if not pkce.verify_code_verifier(
            verifier,
            record.code_challenge,
            record.code_challenge_method,
            allow_plain=self._allow_plain,
        ):
            raise InvalidGrantError(
                "The code_verifier does not match the code_challenge."
            )

    async def _revoke_replay(self, record: CodeRecord) -> None:
        """RFC 6749 §4.1.2: revoke the tokens issued from the code; committed before the error is sent."""
        now = self._clock()
        if record.family_id is not None:
            await self._refresh_tokens.revoke_family(record.family_id, now)
        await self._codes.revoke_issued(record.code_hash, now)
        audit(
            "code.replay",
            subject=record.user_id,
            family_id=str(record.family_id) if record.family_id else None,
            issued_revoked=True,
        )


def _check_redirect_uri(record: CodeRecord, sent: str | None, client: Client) -> None:
    """RFC 6749 §4.1.3: identical to the authorization request's ``redirect_uri`` when that one had it."""
    if record.redirect_uri is not None:
        if sent != record.redirect_uri:
            raise InvalidGrantError(
                "redirect_uri does not match the authorization request."
            )
    elif sent is not None and sent not in client.redirect_uris:
        raise InvalidGrantError(
            "redirect_uri does not match the authorization request."
        )
