"""The resource-owner password grant (RFC 6749 §4.3), with ``email`` as our users' name for ``username``.

Unknown email, wrong password and inactive user all give the same ``invalid_grant`` after the same argon2 work
(a dummy hash stands in for a missing user), so neither the answer nor its timing tells which emails exist. The
``admin`` scope is only for admin users, and only when asked for: the default scope (no ``scope`` parameter)
never includes it, as at the authorization endpoint (least privilege). A hash made with
outdated argon2 parameters is upgraded when the token is issued. A refresh token is issued when the client is
registered for (and the server enables) the ``refresh_token`` grant. No database connection is held while the
password is checked (each store operation takes one only while it runs): the hash waits for the CPU alone.
"""

from typing import ClassVar, Protocol

from oauth_service.crypto.passwords import PasswordCheck
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, TokenRequest, TokenSet
from oauth_service.oauth.outcomes import Grant, Rehash
from oauth_service.oauth.scopes import ADMIN_SCOPE, narrow_scope
from oauth_service.oauth.storage import UserStore
from oauth_service.oauth.throttling import Attempt, NoThrottle, Throttle
from oauth_service.observability.logs import audit


class PasswordVerifier(Protocol):
    """What checks a password (``crypto.passwords.PasswordHasher`` satisfies it)."""

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Verify off the event loop; ``stored_hash=None`` burns the same time and fails."""
        ...


class PasswordGrant:
    """``grant_type=password``."""

    grant_type: ClassVar[str] = "password"
    allows_public_clients: ClassVar[bool] = True

    def __init__(
        self,
        users: UserStore,
        passwords: PasswordVerifier,
        issuer: TokenIssuer,
        *,
        refresh_enabled: bool = True,
        clock: Clock = utcnow,
        throttle: Throttle | None = None,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._issuer = issuer
        self._refresh_enabled = refresh_enabled
        self._clock = clock
        self._throttle = throttle or NoThrottle()

    async def validate(self, request: TokenRequest, client: Client) -> Grant:
        """Check the credentials (throttled per email and per IP, RFC 6749 §4.3.2) and resolve the scope."""
        # One spelling for the lock and the lookup: padded or cased variants are the same account.
        email = canonical_email(request.require("email"))
        password = request.require("password")
        attempt = Attempt("password", email, request.client_ip)
        # A locked account or IP is refused before the password is checked: a correct one too.
        await self._throttle.check(attempt)
        # Before the user is read: a deactivation or password change committed during the hash below must
        # refuse the token minted from what was read (``Grant.as_of``).
        as_of = self._clock()
        user = await self._users.get_by_email(email)
        check = await self._passwords.verify(
            user.password_hash if user else None, password
        )
        if user is None or not check.ok or not user.is_active:
            await self._throttle.failed(attempt)
            audit(
                "login.failed", via="password_grant", subject=user.id if user else None
            )
            raise InvalidGrantError("Invalid email or password.")
        await self._throttle.succeeded(attempt)
        audit("login.succeeded", via="password_grant", subject=user.id)
        allowed = client.scopes if user.is_admin else client.scopes - {ADMIN_SCOPE}
        scope = (
            narrow_scope(request.scope, allowed)
            if request.scope
            else allowed - {ADMIN_SCOPE}
        )
        rehash = (
            Rehash(user.id, check.new_hash, user.password_hash)
            if check.new_hash is not None
            else None
        )
        return Grant(
            client,
            user.id,
            scope,
            with_refresh=self._refresh_enabled
            and "refresh_token" in client.grant_types,
            auth_time=self._clock(),
            as_of=as_of,
            change=rehash,
        )

    async def issue(self, grant: Grant) -> TokenSet:
        """Store an upgraded password hash, then mint."""
        if grant.change is not None:
            change = grant.change
            await self._users.update_password_hash(
                change.user_id, change.new_hash, replacing=change.replacing
            )
        return await self._issuer.issue(grant)
