"""The resource-owner password grant (RFC 6749 §4.3), with ``email`` as our users' name for ``username``.

Unknown email, wrong password and inactive user all give the same ``invalid_grant`` after the same argon2 work
(a dummy hash stands in for a missing user), so neither the answer nor its timing tells which emails exist. The
``admin`` scope is only for admin users, and only when asked for: the default scope (no ``scope`` parameter)
never includes it, as at the authorization endpoint (least privilege). A hash made with
outdated argon2 parameters is upgraded when the token is issued. A refresh token is issued when the client is
registered for (and the server enables) the ``refresh_token`` grant. The user store gives its database
connection back before the password is checked (``UserStore.release``): the hash waits for the CPU, not the
database.
"""

from typing import ClassVar, Protocol

from oauth_service.crypto.passwords import PasswordCheck
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, Grant, TokenRequest, TokenResponse
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
        # The hash may queue behind others for seconds in a login storm: waiting must not hold a pooled
        # connection, or every other grant of this worker starves for one. The writes below take one again.
        await self._users.release()
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
        return Grant(
            client=client,
            subject=user.id,
            scope=scope,
            with_refresh=self._refresh_enabled
            and "refresh_token" in client.grant_types,
            auth_time=self._clock(),
            password_rehash=check.new_hash,
            password_verified_hash=user.password_hash,
            as_of=as_of,
        )

    async def issue(self, grant: Grant) -> TokenResponse:
        """Store an upgraded password hash, then mint."""
        if (
            grant.password_rehash is not None
            and grant.password_verified_hash is not None
            and grant.subject is not None
        ):
            await self._users.update_password_hash(
                grant.subject,
                grant.password_rehash,
                replacing=grant.password_verified_hash,
            )
        return await self._issuer.issue(grant)
