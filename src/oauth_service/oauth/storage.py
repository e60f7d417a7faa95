"""Storage protocols the protocol core depends on (implemented per backend in ``oauth_service.db.stores``).

Every token, code and secret is looked up by its hash (``crypto.tokens.token_hash``); raw values are never stored.
Every store operation is its own unit of work, committed when it returns. Spending a single-use credential is
one operation that checks it, marks it and stores what replaces it (``RefreshClaim``, ``CodeClaim``), so two
concurrent requests cannot both win and a refused one changes nothing.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from oauth_service.oauth.models import Client, User, UserProfile


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A stored authorization code (RFC 6749 §4.1.2), bound to everything it was issued for."""

    code_hash: str = field(repr=False)
    client_id: str
    user_id: str
    redirect_uri: str | None
    scope: frozenset[str]
    auth_time: datetime
    expires_at: datetime
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    used_at: datetime | None = None
    family_id: UUID | None = None
    access_jti: str | None = None
    access_expires_at: datetime | None = None
    # OpenID Connect: the authorization request's ``nonce`` and the browser session (``sid``) it was issued in.
    nonce: str | None = field(default=None, repr=False)
    sid: str | None = None
    # The code's user, when the store read it in the same query (one round trip less per redemption); None
    # when not loaded, and then the grant reads the user itself.
    user: User | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Successor:
    """The refresh token a claim stores in place of what it spends; the rest is copied from the spent row.

    Family, user, scope and ``auth_time`` come from the code or token spent; ``expires_at`` is the earlier of
    ``idle_until`` and the family's end (RFC 9700 §4.14.2).
    """

    id: UUID
    token_hash: str = field(repr=False)
    idle_until: datetime


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """The access token minted from a spent credential: recorded with it, so a replay or reuse can revoke it."""

    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshClaim:
    """Rotate the live refresh token ``token_hash`` of ``client_id`` and store ``successor`` in its family.

    Live: neither rotated nor revoked, before its idle and family ends, its user (if any) active, its scope
    containing ``required_scope``, and its user an administrator when ``requires_admin``.
    """

    token_hash: str = field(repr=False)
    client_id: str
    at: datetime
    required_scope: frozenset[str]
    requires_admin: bool
    successor: Successor
    access: AccessRecord


@dataclass(frozen=True, slots=True)
class CodeClaim:
    """Mark the unused code ``code_hash`` of ``client_id`` used, recording ``access`` and starting ``family_id``.

    The code must be unexpired, its user active, and the request must match its bindings (RFC 6749 §4.1.3,
    RFC 7636 §4.6): ``redirect_uri`` equal to the stored one, or none stored and ``redirect_uri_registered``;
    the stored challenge met by ``s256_challenge`` (method ``S256``) or ``plain_challenge`` (method ``plain``,
    None unless allowed), or, without a stored challenge, no verifier sent and ``public_client`` false.
    ``refresh`` (when set) is stored with the code's user, scope and ``auth_time``, ending at ``family_expires_at``.
    """

    code_hash: str = field(repr=False)
    client_id: str
    at: datetime
    redirect_uri: str | None
    redirect_uri_registered: bool
    s256_challenge: str | None = field(repr=False)
    plain_challenge: str | None = field(repr=False)
    verifier_sent: bool
    public_client: bool
    family_id: UUID
    family_expires_at: datetime
    access: AccessRecord
    refresh: Successor | None


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token: one link in a rotation family (RFC 9700 §4.14.2)."""

    id: UUID
    token_hash: str = field(repr=False)
    family_id: UUID
    parent_id: UUID | None
    client_id: str
    user_id: str | None
    scope: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    family_expires_at: datetime
    auth_time: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    access_jti: str | None = None
    access_expires_at: datetime | None = None
    # The browser session of the sign-in that started the family (OpenID Connect ``sid``), if any.
    sid: str | None = None
    # The token's user, when the store read it in the same query (one round trip less per refresh); None when
    # not loaded, and then the grant reads the user itself.
    user: User | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """A refresh token about to be stored (hash only)."""

    id: UUID
    token_hash: str = field(repr=False)
    family_id: UUID
    parent_id: UUID | None
    client_id: str
    user_id: str | None
    scope: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    family_expires_at: datetime
    auth_time: datetime | None
    access_jti: str
    access_expires_at: datetime
    sid: str | None = None


class ClientStore(Protocol):
    """Registered clients."""

    async def get(self, client_id: str) -> Client | None:
        """Return the client (possibly from a cache), or None."""
        ...

    async def reload(self, client_id: str) -> Client | None:
        """Return the client as stored now, bypassing any cache (a secret may have been rotated), or None."""
        ...


class UserStore(Protocol):
    """Resource owners."""

    async def get(self, user_id: str) -> User | None:
        """Return the user by id, or None."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """Return the user by email (case-insensitive), or None."""
        ...

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        """Store a rehashed password (argon2 parameters changed) if the stored hash is still ``replacing``.

        ``replacing`` is the hash the password was verified against: a password change committed meanwhile
        is kept, not overwritten by the old password's new hash.
        """
        ...

    async def profile(self, user_id: str) -> UserProfile | None:
        """Return an active user's standard claims (OpenID Connect Core §5.1), or None if unknown or deactivated.

        Only UserInfo and ID tokens without an access token read this; the grants read ``get`` alone.
        """
        ...


class ScopeStore(Protocol):
    """Known scopes and their human descriptions."""

    async def all(self) -> dict[str, str]:
        """Return every scope name mapped to its description."""
        ...


class AuthorizationCodeStore(Protocol):
    """Authorization codes, stored hashed."""

    async def save(self, code: CodeRecord) -> None:
        """Store a new code."""
        ...

    async def get(self, code_hash: str) -> CodeRecord | None:
        """Return the code by hash, used or not."""
        ...

    async def redeem(self, claim: CodeClaim) -> CodeRecord | None:
        """Spend the code if ``claim`` holds, storing its refresh token with it, all or nothing.

        The code as it was (with its user) when spent now; None, and nothing changed, otherwise.
        """
        ...

    async def revoke_issued(self, code_hash: str, at: datetime) -> None:
        """Put the access token a redeemed code issued on the revocation list (code replay, RFC 6749 §4.1.2).

        Commits on its own connection: the revocation must survive the error response that follows.
        """
        ...


class RefreshTokenStore(Protocol):
    """Refresh tokens, stored hashed, grouped in rotation families."""

    async def save(self, token: NewRefreshToken) -> None:
        """Store a new refresh token."""
        ...

    async def get(self, token_hash: str) -> RefreshRecord | None:
        """Return the token by hash, whatever its state."""
        ...

    async def rotate(self, claim: RefreshClaim) -> RefreshRecord | None:
        """Rotate the token if ``claim`` holds and store its successor, all or nothing.

        The token as it was (with its user) when rotated now; None, and nothing changed, otherwise.
        """
        ...

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        """Return the newest token rotated from ``parent_id``, or None (grace-window retries)."""
        ...

    async def replace_successor(
        self, successor_id: UUID, new: NewRefreshToken, at: datetime
    ) -> bool:
        """Atomically revoke an unused successor and insert ``new`` in its place (grace-window retry).

        False when the successor was already used or revoked.
        """
        ...

    async def revoke_family(self, family_id: UUID, at: datetime) -> None:
        """Revoke every token of the family and the access tokens issued from it.

        Commits on its own connection: the revocation must survive the error response that follows.
        """
        ...


class RevokedTokenStore(Protocol):
    """The access-token revocation list (by ``jti``), kept until each token would have expired."""

    async def add(self, jti: str, expires_at: datetime) -> None:
        """Put a ``jti`` on the list."""
        ...

    async def contains(self, jti: str) -> bool:
        """Return whether the ``jti`` is revoked."""
        ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The stores of one process, built once for its database backend (``db.stores.build_stores``)."""

    clients: ClientStore
    users: UserStore
    scopes: ScopeStore
    refresh_tokens: RefreshTokenStore
    revoked_tokens: RevokedTokenStore
    codes: AuthorizationCodeStore
