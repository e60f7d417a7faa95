"""Administrative service functions shared by the CLI, the admin API and the tests.

Each function works on a caller-owned ``AsyncSession``: it validates everything first (``AdminError``, nothing
written), then adds or updates rows and flushes. The caller commits. Client secrets are generated here (256 bits,
RFC 6749 §2.3.1), returned once and stored only as SHA-256; passwords are hashed with argon2id off the event loop.
"""

import functools
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.db.change_feed import ClientChanged, UserChanged, publish
from oauth_service.db.cutoffs import cut_off
from oauth_service.db.errors import AdminError
from oauth_service.db.mapping import (
    client_from_row,
    join_set,
    profile_from_row,
    user_from_row,
)
from oauth_service.db.sessions_end import end_user_sessions, notify_user_logout
from oauth_service.db.tables import (
    AuthorizationCodeRow,
    ClientRow,
    LoginSessionRow,
    RefreshTokenRow,
    ScopeRow,
    UserRow,
)
from oauth_service.oauth import registration
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.models import Client, User, UserProfile
from oauth_service.oidc.profile_rules import ProfileError, ProfileValue, check_profile

__all__ = [
    "AdminError",
    "Scope",
    "create_client",
    "create_scope",
    "create_user",
    "deactivate_user",
    "delete_client",
    "find_user",
    "list_clients",
    "list_scopes",
    "list_users",
    "logout_user",
    "rotate_client_secret",
    "set_user_password",
    "update_client",
    "update_user",
    "user_profile",
]

P = ParamSpec("P")
R = TypeVar("R")


def _answering_admin_error(rule: Callable[P, R]) -> Callable[P, R]:
    """The core's registration ``rule``, raising ``AdminError`` (same line) where it raises ``RegistrationError``."""

    @functools.wraps(rule)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return rule(*args, **kwargs)
        except registration.RegistrationError as exc:
            raise AdminError(*exc.args) from exc

    return checked


check_client_id = _answering_admin_error(registration.check_client_id)
check_grant_types = _answering_admin_error(registration.check_grant_types)
check_name = _answering_admin_error(registration.check_name)
check_password = _answering_admin_error(registration.check_password)
check_redirect_uris = _answering_admin_error(registration.check_redirect_uris)
check_post_logout_redirect_uris = _answering_admin_error(
    registration.check_post_logout_redirect_uris
)
check_backchannel_logout_uri = _answering_admin_error(
    registration.check_backchannel_logout_uri
)
check_scope_name = _answering_admin_error(registration.check_scope_name)
normalize_email = _answering_admin_error(registration.normalize_email)


# How much longer than its cache TTL a server may go on authenticating a deleted client: the time a token
# request takes between reading the cached client and minting, and clock skew between the writer and servers.
CLIENT_CACHE_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Scope:
    """A scope and the description shown on the consent page."""

    name: str
    description: str


async def _flush(session: AsyncSession, conflict: str) -> None:
    # A concurrent writer can still win the race after the pre-check; report it the same way.
    try:
        await session.flush()
    except IntegrityError:
        raise AdminError(conflict) from None


# --- users -------------------------------------------------------------------------------------------------


def _checked_profile(changes: Mapping[str, ProfileValue]) -> dict[str, ProfileValue]:
    try:
        return check_profile(changes)
    except ProfileError as exc:
        raise AdminError(*exc.args) from exc


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    hasher: PasswordHasher,
    is_admin: bool = False,
    profile: Mapping[str, ProfileValue] | None = None,
    clock: Clock = utcnow,
) -> User:
    """Create a user; emails are unique case-insensitively.

    ``profile`` holds standard claims by name (``oidc.profile_rules``: name, locale, email_verified, ...).
    """
    normalized = normalize_email(email)
    check_password(password)
    claims = _checked_profile(profile or {})
    taken = await session.scalar(
        select(col(UserRow.id)).where(col(UserRow.email_normalized) == normalized)
    )
    if taken is not None:
        raise AdminError(f"a user with email {normalized!r} already exists")
    now = clock()
    row = UserRow(
        id=str(uuid.uuid4()),
        email=email.strip(),
        email_normalized=normalized,
        password_hash=await hasher.hash(password),
        is_admin=is_admin,
        created_at=now,
        updated_at=now,
    )
    for name, value in claims.items():
        setattr(row, name, value)
    session.add(row)
    await _flush(session, f"a user with email {normalized!r} already exists")
    return user_from_row(row)


async def _user_row(
    session: AsyncSession, *, user_id: str | None, email: str | None
) -> UserRow:
    if (user_id is None) == (email is None):
        raise AdminError("identify the user by exactly one of user_id or email")
    if user_id is not None:
        row = await session.get(UserRow, user_id)
    else:
        row = await session.scalar(
            select(UserRow).where(
                col(UserRow.email_normalized) == normalize_email(email or "")
            )
        )
    if row is None:
        raise AdminError(f"no such user: {user_id or email!r}")
    return row


async def find_user(
    session: AsyncSession, *, user_id: str | None = None, email: str | None = None
) -> User:
    """Return a user by id or email (case-insensitive)."""
    return user_from_row(await _user_row(session, user_id=user_id, email=email))


async def update_user(
    session: AsyncSession,
    *,
    changes: Mapping[str, ProfileValue],
    user_id: str | None = None,
    email: str | None = None,
    clock: Clock = utcnow,
) -> User:
    """Change a user's standard claims: only those in ``changes``, an empty string or None clears one.

    ``updated_at`` (the claim of OpenID Connect Core §5.1) moves to now. Grants and sessions are kept.
    """
    claims = _checked_profile(changes)
    if not claims:
        raise AdminError("nothing to update: give at least one claim")
    row = await _user_row(session, user_id=user_id, email=email)
    for name, value in claims.items():
        setattr(row, name, value)
    row.updated_at = clock()
    await session.flush()
    await publish(session, UserChanged(row.id))
    return user_from_row(row)


async def user_profile(session: AsyncSession, user_id: str) -> UserProfile:
    """Return a user's standard claims, active or not (a user just read or written costs no query)."""
    return profile_from_row(await _user_row(session, user_id=user_id, email=None))


async def list_users(session: AsyncSession) -> list[User]:
    """Return every user, ordered by email."""
    rows = await session.scalars(
        select(UserRow).order_by(col(UserRow.email_normalized))
    )
    return [user_from_row(row) for row in rows]


async def _end_user_grants(
    session: AsyncSession, user_id: str, clock: Clock, *, reason: str
) -> None:
    # Credentials changed or the account closed: refresh tokens, browser sessions and access tokens must stop
    # working now. The cut-off covers every access token, those no table records included.
    now = clock()
    # The sessions' clients are told (Back-Channel Logout 1.0) in this transaction, before the sessions go.
    await notify_user_logout(session, user_id, reason=reason, now=now)
    await session.execute(
        update(RefreshTokenRow)
        .where(
            col(RefreshTokenRow.user_id) == user_id,
            col(RefreshTokenRow.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    await cut_off(session, ("user", user_id), now)
    await session.execute(
        delete(LoginSessionRow).where(col(LoginSessionRow.user_id) == user_id)
    )
    # A code not yet redeemed would otherwise yield fresh tokens after the change: it goes too, so its
    # redemption is invalid_grant. Used codes stay, for their replay detection.
    await session.execute(
        delete(AuthorizationCodeRow).where(
            col(AuthorizationCodeRow.user_id) == user_id,
            col(AuthorizationCodeRow.used_at).is_(None),
        )
    )


async def deactivate_user(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    email: str | None = None,
    clock: Clock = utcnow,
) -> User:
    """Deactivate a user and revoke their refresh tokens, login sessions and unused authorization codes."""
    row = await _user_row(session, user_id=user_id, email=email)
    row.is_active = False
    row.updated_at = clock()
    await _end_user_grants(session, row.id, clock, reason="user_deactivated")
    await session.flush()
    return user_from_row(row)


async def logout_user(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    email: str | None = None,
    clock: Clock = utcnow,
) -> int:
    """End every browser session of a user, telling their clients; return the back-channel logouts enqueued.

    Refresh tokens granted with ``offline_access`` survive, as with a logout from the browser
    (``db.sessions_end``).
    """
    row = await _user_row(session, user_id=user_id, email=email)
    return await end_user_sessions(session, row.id, reason="admin_logout", now=clock())


async def set_user_password(
    session: AsyncSession,
    *,
    password: str,
    hasher: PasswordHasher,
    user_id: str | None = None,
    email: str | None = None,
    clock: Clock = utcnow,
) -> User:
    """Replace a user's password; existing refresh tokens, login sessions and unused codes are revoked."""
    check_password(password)
    row = await _user_row(session, user_id=user_id, email=email)
    row.password_hash = await hasher.hash(password)
    row.updated_at = clock()
    await _end_user_grants(session, row.id, clock, reason="password_changed")
    await session.flush()
    return user_from_row(row)


# --- scopes ------------------------------------------------------------------------------------------------


async def create_scope(
    session: AsyncSession, *, name: str, description: str = "", clock: Clock = utcnow
) -> Scope:
    """Create a scope (RFC 6749 §3.3 token syntax)."""
    check_scope_name(name)
    description = description.strip()
    if description:
        check_name(description, what="scope description", limit=512)
    if await session.get(ScopeRow, name) is not None:
        raise AdminError(f"scope {name!r} already exists")
    session.add(ScopeRow(name=name, description=description, created_at=clock()))
    await _flush(session, f"scope {name!r} already exists")
    return Scope(name=name, description=description)


async def list_scopes(session: AsyncSession) -> list[Scope]:
    """Return every scope, ordered by name."""
    rows = await session.scalars(select(ScopeRow).order_by(col(ScopeRow.name)))
    return [Scope(name=row.name, description=row.description) for row in rows]


# --- clients -----------------------------------------------------------------------------------------------


async def _check_scopes_exist(session: AsyncSession, scopes: frozenset[str]) -> None:
    for name in sorted(scopes):
        check_scope_name(name)
    known = set(
        await session.scalars(
            select(col(ScopeRow.name)).where(col(ScopeRow.name).in_(scopes))
        )
    )
    missing = sorted(scopes - known)
    if missing:
        raise AdminError(
            f"unknown scope {missing[0]!r} (create it with: scopes create)"
        )


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    grant_types: Iterable[str],
    redirect_uris: Iterable[str],
    scopes: Iterable[str],
    is_public: bool = False,
    is_first_party: bool = False,
    client_id: str | None = None,
    post_logout_redirect_uris: Iterable[str] = (),
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    clock: Clock = utcnow,
) -> tuple[Client, str | None]:
    """Register a client; returns it with its plaintext secret (``None`` for public clients), shown once."""
    name = check_name(name)
    grants = check_grant_types(grant_types, is_public=is_public)
    uris = check_redirect_uris(redirect_uris, grants)
    logout_uris = check_post_logout_redirect_uris(post_logout_redirect_uris)
    if backchannel_logout_uri is not None:
        check_backchannel_logout_uri(backchannel_logout_uri)
    scope_set = frozenset(scopes)
    await _check_scopes_exist(session, scope_set)
    client_id = check_client_id(client_id) if client_id else secrets.token_urlsafe(16)
    if await session.get(ClientRow, client_id) is not None:
        raise AdminError(f"client_id {client_id!r} already exists")
    secret = None if is_public else new_opaque_token()
    now = clock()
    row = ClientRow(
        client_id=client_id,
        secret_hash=token_hash(secret) if secret is not None else None,
        name=name,
        is_public=is_public,
        grant_types=join_set(grants),
        redirect_uris=uris,
        scopes=join_set(scope_set),
        token_endpoint_auth_method="none" if is_public else "client_secret_basic",
        is_first_party=is_first_party,
        post_logout_redirect_uris=logout_uris,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await _flush(session, f"client_id {client_id!r} already exists")
    return client_from_row(row), secret


async def _client_row(session: AsyncSession, client_id: str) -> ClientRow:
    row = await session.get(ClientRow, client_id)
    if row is None:
        raise AdminError(f"no such client: {client_id!r}")
    return row


async def rotate_client_secret(
    session: AsyncSession, *, client_id: str, clock: Clock = utcnow
) -> tuple[Client, str]:
    """Replace a confidential client's secret; the old one stops working at commit.

    Access tokens already issued stay valid (RFC 6749 asks nothing else): delete the client to end them.
    """
    row = await _client_row(session, client_id)
    if row.is_public:
        raise AdminError(f"client {client_id!r} is public and has no secret")
    secret = new_opaque_token()
    row.secret_hash = token_hash(secret)
    row.updated_at = clock()
    await session.flush()
    await publish(session, ClientChanged(client_id))
    return client_from_row(row), secret


async def delete_client(
    session: AsyncSession,
    *,
    client_id: str,
    client_cache_ttl: float,
    clock: Clock = utcnow,
) -> None:
    """Delete a client; its codes, refresh tokens and consents go with it (ON DELETE CASCADE).

    Its access tokens are refused from the commit on (a cut-off: a client id may be registered again), and so
    are those minted until ``client_cache_ttl`` (the servers' ``OAUTH_CLIENT_CACHE_TTL``) and a margin after
    now: a server whose cached copy of the client outlives the deletion (another replica that missed the
    notification, or the server while the CLI deletes on SQLite) can still authenticate it that long.
    A client registered again under the same id within that window gets tokens refused until it ends.
    """
    await _client_row(session, client_id)
    await session.execute(
        delete(ClientRow).where(col(ClientRow.client_id) == client_id)
    )
    until = clock() + timedelta(seconds=client_cache_ttl) + CLIENT_CACHE_MARGIN
    await cut_off(session, ("client", client_id), until)
    await publish(session, ClientChanged(client_id))


async def list_clients(session: AsyncSession) -> list[Client]:
    """Return every client, ordered by client_id."""
    rows = await session.scalars(select(ClientRow).order_by(col(ClientRow.client_id)))
    return [client_from_row(row) for row in rows]


async def update_client(
    session: AsyncSession,
    *,
    client_id: str,
    name: str | None = None,
    grant_types: Iterable[str] | None = None,
    redirect_uris: Iterable[str] | None = None,
    scopes: Iterable[str] | None = None,
    is_first_party: bool | None = None,
    post_logout_redirect_uris: Iterable[str] | None = None,
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool | None = None,
    clock: Clock = utcnow,
) -> Client:
    """Change a client's registration; omitted fields keep their value and the result is re-validated whole.

    An empty ``backchannel_logout_uri`` removes it.
    """
    row = await _client_row(session, client_id)
    current = client_from_row(row)
    new_name = check_name(name) if name is not None else current.name
    grants = check_grant_types(
        current.grant_types if grant_types is None else grant_types,
        is_public=row.is_public,
    )
    uris = check_redirect_uris(
        current.redirect_uris if redirect_uris is None else redirect_uris, grants
    )
    scope_set = current.scopes if scopes is None else frozenset(scopes)
    await _check_scopes_exist(session, scope_set)
    logout_uris = check_post_logout_redirect_uris(
        current.post_logout_redirect_uris
        if post_logout_redirect_uris is None
        else post_logout_redirect_uris
    )
    backchannel_uri = current.backchannel_logout_uri
    if backchannel_logout_uri is not None:
        backchannel_uri = backchannel_logout_uri or None
        if backchannel_uri is not None:
            check_backchannel_logout_uri(backchannel_uri)
    row.post_logout_redirect_uris = logout_uris
    row.backchannel_logout_uri = backchannel_uri
    if backchannel_logout_session_required is not None:
        row.backchannel_logout_session_required = backchannel_logout_session_required
    row.name = new_name
    row.grant_types = join_set(grants)
    row.redirect_uris = uris
    row.scopes = join_set(scope_set)
    if is_first_party is not None:
        row.is_first_party = is_first_party
    row.updated_at = clock()
    await session.flush()
    await publish(session, ClientChanged(client_id))
    return client_from_row(row)
