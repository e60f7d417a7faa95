"""The token half of the authorization code grant (RFC 6749 §4.1.3, §4.1.4, §10.5; RFC 7636 §4.5, §4.6).

The code is spent in one step of the store (``CodeClaim``): it must belong to the authenticated client, be
unused and unexpired, its ``redirect_uri`` must equal the one sent to the authorization endpoint, and PKCE must
hold (public clients must have used it; a verifier for a code issued without a challenge is a downgrade attempt,
RFC 9700 §4.8.2). The same step records the access token's ``jti`` and the refresh family it starts and stores
the refresh token, so concurrent redemptions have one winner and the code never leaves without its tokens.

When the step spends nothing, the code is read to say why, in the order above. Only a redemption that passes
every check and finds the code already used counts as a replay: it revokes what the first redemption issued
(committed before the error). A replay with bad client auth or a bad verifier is refused without revoking
anything, so an attacker holding a stolen code cannot use it to log the real client out. A refresh token is
issued only when the client is registered for the ``refresh_token`` grant and the server enables it.
"""

from typing import ClassVar

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth import pkce
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.ids import time_ordered_uuid
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import (
    Authentication,
    Client,
    TokenRequest,
    TokenSet,
)
from oauth_service.oauth.outcomes import CodeRedemption
from oauth_service.oauth.storage import (
    AuthorizationCodeStore,
    CodeClaim,
    CodeRecord,
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

    async def validate(self, request: TokenRequest, client: Client) -> CodeRedemption:
        """Name the redemption; the code itself is checked by the store's step in ``issue``."""
        code = request.require("code")
        return CodeRedemption(
            client,
            token_hash(code),
            request.redirect_uri,
            request.code_verifier,
            with_refresh=self._refresh_enabled
            and "refresh_token" in client.grant_types,
            # Before the code and its user are read (``Grant.as_of``).
            as_of=self._clock(),
        )

    async def issue(self, redemption: CodeRedemption) -> TokenSet:
        """Spend the code in one step, recording what it issues, then mint; else find out why."""
        client = redemption.client
        verifier = redemption.code_verifier
        access = self._issuer.access_record(redemption.as_of)
        plan = self._issuer.refresh_plan() if redemption.with_refresh else None
        record: CodeRecord | None = None
        # A malformed verifier can match nothing: no step, the refusal below says why.
        if verifier is None or pkce.is_valid_verifier(verifier):
            sent = redemption.redirect_uri
            claim = CodeClaim(
                redemption.code_hash,
                client.client_id,
                self._clock(),
                redirect_uri=sent,
                redirect_uri_registered=sent is None or sent in client.redirect_uris,
                s256_challenge=pkce.s256_challenge(verifier) if verifier else None,
                plain_challenge=verifier if self._allow_plain else None,
                verifier_sent=verifier is not None,
                public_client=client.is_public,
                family_id=time_ordered_uuid(),
                family_expires_at=self._issuer.family_end(),
                access=access,
                refresh=plan.successor if plan is not None else None,
            )
            record = await self._codes.redeem(claim)
        if record is None:
            await self._refuse(redemption)
            # Every check held on the read, yet the store refused: its checks and ``_refuse``'s disagree.
            raise InvalidGrantError("The authorization code is invalid.")
        minted = self._issuer.sign(
            client, record.user_id, record.scope, record.auth_time, access
        )
        # The sign-in the code was issued for: its nonce and browser session (OpenID Connect Core §3.1.3.6).
        signed_in = Authentication(
            record.user_id, record.auth_time, sid=record.sid, nonce=record.nonce
        )
        return self._issuer.token_set(
            minted, record.scope, plan.raw if plan is not None else None, signed_in
        )

    async def _refuse(self, redemption: CodeRedemption) -> None:
        """Raise why the code was not spent; a valid replay revokes what the code issued."""
        client = redemption.client
        record = await self._codes.get(redemption.code_hash)
        if record is None or record.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is invalid.")
        _check_redirect_uri(record, redemption.redirect_uri, client)
        self._check_pkce(record, redemption.code_verifier, client)
        if record.used_at is not None:
            await self._revoke_replay(record)
            raise InvalidGrantError(CODE_USED)
        if record.expires_at <= self._clock():
            raise InvalidGrantError("The authorization code expired.")
        user = record.user or await self._users.get(record.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError("The authorization code is invalid.")

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
