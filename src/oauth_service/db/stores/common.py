"""The store operations both backends run the same way, in SQLAlchemy Core (``oauth.storage`` Protocols).

Each operation is its own unit of work (``units.Database``). Statements are built once with bind parameters,
and rows are read as Core rows, never ORM entities. Revocations put the access-token ids on the revocation
list in the database, in this process's list once committed, and in every other process's through the
change feed (``db.change_feed``). Spending a code or a refresh token is the one operation that differs by
backend (``sqlite``, ``postgres``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from oauth_service.db.change_feed import jtis_revoked, publish
from oauth_service.db.mapping import join_set, split_set
from oauth_service.db.stores.units import Database
from oauth_service.db.tables import (
    AuthorizationCodeRow,
    ClientRow,
    RefreshTokenRow,
    RevokedTokenRow,
    ScopeRow,
    UserRow,
)
from oauth_service.oauth.clock import Clock, utcnow
from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.models import Client, User, UserProfile
from oauth_service.oauth.revocation_list import RevocationList
from oauth_service.oauth.storage import CodeRecord, NewRefreshToken, RefreshRecord

CLIENTS = ClientRow.__table__  # type: ignore[attr-defined]
USERS = UserRow.__table__  # type: ignore[attr-defined]
SCOPES = ScopeRow.__table__  # type: ignore[attr-defined]
CODES = AuthorizationCodeRow.__table__  # type: ignore[attr-defined]
REFRESH = RefreshTokenRow.__table__  # type: ignore[attr-defined]
REVOKED = RevokedTokenRow.__table__  # type: ignore[attr-defined]

USER_COLUMNS = ("id", "email", "is_active", "is_admin", "password_hash")
Record = TypeVar("Record", RefreshRecord, CodeRecord)
_JOINED_USER = tuple(USERS.c[name].label(f"u_{name}") for name in USER_COLUMNS)
_SELECT_USER = select(*(USERS.c[name] for name in USER_COLUMNS))
USER_BY_ID = _SELECT_USER.where(USERS.c.id == bindparam("user_id"))
_USER_BY_EMAIL = _SELECT_USER.where(USERS.c.email_normalized == bindparam("email"))
# UserInfo's one read (by primary key): the standard claims of an active user (OpenID Connect Core §5.1).
PROFILE_COLUMNS = tuple(
    field.name for field in fields(UserProfile) if field.name != "subject"
)
_PROFILE_BY_ID = select(USERS.c.id, *(USERS.c[name] for name in PROFILE_COLUMNS)).where(
    USERS.c.id == bindparam("user_id"), USERS.c.is_active.is_(True)
)
_CLIENT = select(CLIENTS).where(CLIENTS.c.client_id == bindparam("client_id"))
# A token or code with its user (LEFT JOIN): spending one needs both, and one query saves a round trip.
_REFRESH_BY_HASH = (
    select(REFRESH, *_JOINED_USER)
    .outerjoin(USERS, USERS.c.id == REFRESH.c.user_id)
    .where(REFRESH.c.token_hash == bindparam("hash"))
)
_CODE_BY_HASH = (
    select(CODES, *_JOINED_USER)
    .outerjoin(USERS, USERS.c.id == CODES.c.user_id)
    .where(CODES.c.code_hash == bindparam("hash"))
)
_REVOKE_LINK = (
    update(REFRESH)
    .where(
        REFRESH.c.id == bindparam("token_id"),
        REFRESH.c.rotated_at.is_(None),
        REFRESH.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("at"))
)
INSERT_REFRESH = insert(REFRESH)


# The field names of each record type, looked up once: the spends run on the token hot path.
_COLUMNS: dict[type[Any], tuple[str, ...]] = {
    kind: tuple(field.name for field in fields(kind))
    for kind in (RefreshRecord, CodeRecord)
}


def _record(kind: type[Record], row: Mapping[Any, Any], **given: Any) -> Record:
    """``kind`` from the row's columns of the same names (a Core mapping or an asyncpg record).

    ``scope`` is stored space-separated; fields in ``given`` (the record's user) are not columns.
    """
    values = {name: row[name] for name in _COLUMNS[kind] if name not in given}
    if "scope" in values:
        values["scope"] = split_set(values["scope"])
    return kind(**values, **given)


def user_from(row: Mapping[Any, Any] | None, prefix: str = "") -> User | None:
    """A ``users`` row, or a read's ``u_*`` user columns (``prefix="u_"``), as a ``User``; None without one."""
    if row is None or row[f"{prefix}id"] is None:
        return None
    return User(**{name: row[prefix + name] for name in USER_COLUMNS})


def refresh_from(row: Mapping[Any, Any], user: User | None = None) -> RefreshRecord:
    """A ``refresh_tokens`` row (Core mapping or asyncpg record) as a ``RefreshRecord``."""
    return _record(RefreshRecord, row, user=user)


def code_from(row: Mapping[Any, Any], user: User | None) -> CodeRecord:
    """An ``authorization_codes`` row (Core mapping or asyncpg record) and its user as a ``CodeRecord``."""
    return _record(CodeRecord, row, user=user)


def refresh_values(token: NewRefreshToken) -> dict[str, Any]:
    """The row of a new refresh token, keyed by column name."""
    return {
        "id": token.id,
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "parent_id": token.parent_id,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": join_set(token.scope),
        "auth_time": token.auth_time,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "family_expires_at": token.family_expires_at,
        "access_jti": token.access_jti,
        "access_expires_at": token.access_expires_at,
        "sid": token.sid,
    }


async def add_revoked_jtis(
    conn: AsyncConnection, entries: Sequence[tuple[str, datetime]], at: datetime
) -> None:
    """Put access-token ids on the revocation list and announce them; ids already there are left alone."""
    if not entries:
        return
    dialect_insert = (
        postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    )
    values = [{"jti": jti, "expires_at": exp, "revoked_at": at} for jti, exp in entries]
    await conn.execute(dialect_insert(REVOKED).values(values).on_conflict_do_nothing())
    await publish(conn, *jtis_revoked(entries))


def list_locally(
    revocations: RevocationList | None, entries: Sequence[tuple[str, datetime]]
) -> None:
    """Put committed revocations on this process's list at once (its listener would hear of them later)."""
    if revocations is not None:
        for jti, expires_at in entries:
            revocations.add(jti, expires_at.timestamp())


class SqlClientStore:
    """``ClientStore`` over the ``clients`` table (no cache: ``oauth.client_cache`` wraps it)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, client_id: str) -> Client | None:
        """Return the client, or None."""
        async with self._db.statement() as conn:
            row = (await conn.execute(_CLIENT, {"client_id": client_id})).first()
        if row is None:
            return None
        m = row._mapping
        return Client(
            client_id=m["client_id"],
            name=m["name"],
            is_public=m["is_public"],
            grant_types=split_set(m["grant_types"]),
            redirect_uris=tuple(m["redirect_uris"]),
            scopes=split_set(m["scopes"]),
            token_endpoint_auth_method=m["token_endpoint_auth_method"],
            is_first_party=m["is_first_party"],
            secret_hash=m["secret_hash"],
            issued_at=m["created_at"],
            post_logout_redirect_uris=tuple(m["post_logout_redirect_uris"] or ()),
            backchannel_logout_uri=m["backchannel_logout_uri"],
            backchannel_logout_session_required=m[
                "backchannel_logout_session_required"
            ],
        )

    async def reload(self, client_id: str) -> Client | None:
        """Return the client as stored now (this store has no cache)."""
        return await self.get(client_id)


class SqlUserStore:
    """``UserStore`` over the ``users`` table (emails match case-insensitively)."""

    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def get(self, user_id: str) -> User | None:
        """Return the user by id, or None."""
        async with self._db.statement() as conn:
            row = (await conn.execute(USER_BY_ID, {"user_id": user_id})).first()
        return user_from(row._mapping if row is not None else None)

    async def get_by_email(self, email: str) -> User | None:
        """Return the user by email, or None."""
        values = {"email": canonical_email(email)}
        async with self._db.statement() as conn:
            row = (await conn.execute(_USER_BY_EMAIL, values)).first()
        return user_from(row._mapping if row is not None else None)

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        """Store a rehashed password unless the password changed since it was verified against ``replacing``."""
        async with self._db.statement() as conn:
            await conn.execute(
                update(USERS)
                .where(USERS.c.id == user_id, USERS.c.password_hash == replacing)
                .values(password_hash=password_hash, updated_at=self._clock())
            )

    async def profile(self, user_id: str) -> UserProfile | None:
        """Return an active user's standard claims, or None if unknown or deactivated."""
        async with self._db.statement() as conn:
            row = (await conn.execute(_PROFILE_BY_ID, {"user_id": user_id})).first()
        if row is None:
            return None
        values = row._mapping
        return UserProfile(
            subject=values["id"], **{name: values[name] for name in PROFILE_COLUMNS}
        )


class SqlScopeStore:
    """``ScopeStore`` over the ``scopes`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> dict[str, str]:
        """Return every scope name mapped to its description."""
        async with self._db.statement() as conn:
            result = await conn.execute(
                select(SCOPES.c.name, SCOPES.c.description).order_by(SCOPES.c.name)
            )
            return {str(name): str(text) for name, text in result.all()}


class SqlRevokedTokenStore:
    """``RevokedTokenStore`` over ``revoked_tokens``."""

    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def add(self, jti: str, expires_at: datetime) -> None:
        """Put a ``jti`` on the list (idempotent) and announce it."""
        async with self._db.transaction() as conn:
            await add_revoked_jtis(conn, [(jti, expires_at)], self._clock())

    async def contains(self, jti: str) -> bool:
        """Return whether the ``jti`` is revoked."""
        async with self._db.statement() as conn:
            found = await conn.scalar(select(REVOKED.c.jti).where(REVOKED.c.jti == jti))
        return found is not None


class SqlRefreshTokenStore:
    """``RefreshTokenStore`` over ``refresh_tokens``, but for ``rotate`` (per backend)."""

    def __init__(self, db: Database, revocations: RevocationList | None = None) -> None:
        self._db = db
        self._revocations = revocations

    async def save(self, token: NewRefreshToken) -> None:
        """Store a new refresh token."""
        async with self._db.statement() as conn:
            await conn.execute(INSERT_REFRESH, refresh_values(token))

    async def get(self, token_hash: str) -> RefreshRecord | None:
        """Return the token by hash (with its user), whatever its state."""
        async with self._db.statement() as conn:
            row = (await conn.execute(_REFRESH_BY_HASH, {"hash": token_hash})).first()
        return (
            refresh_from(row._mapping, user_from(row._mapping, "u_")) if row else None
        )

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        """Return the newest token rotated from ``parent_id``, or None.

        Looked up within the parent's family (``parent_id`` has no index of its own; the family's does), so
        the read stays an index scan of one family however many tokens are stored.
        """
        family = (
            select(REFRESH.c.family_id)
            .where(REFRESH.c.id == parent_id)
            .scalar_subquery()
        )
        async with self._db.statement() as conn:
            row = (
                await conn.execute(
                    select(REFRESH)
                    .where(
                        REFRESH.c.family_id == family, REFRESH.c.parent_id == parent_id
                    )
                    .order_by(REFRESH.c.issued_at.desc(), REFRESH.c.id.desc())
                    .limit(1)
                )
            ).first()
        return refresh_from(row._mapping) if row is not None else None

    async def replace_successor(
        self, successor_id: UUID, new: NewRefreshToken, at: datetime
    ) -> bool:
        """Revoke an unused successor (and its access token) and insert ``new``; False when it was used."""
        async with self._db.transaction() as conn:
            marked = await conn.execute(
                _REVOKE_LINK, {"token_id": successor_id, "at": at}
            )
            if marked.rowcount != 1:
                return False
            result = await conn.execute(
                select(REFRESH.c.access_jti, REFRESH.c.access_expires_at).where(
                    REFRESH.c.id == successor_id, REFRESH.c.access_jti.is_not(None)
                )
            )
            entries = [
                (j, exp) for j, exp in result.all() if exp is not None and exp > at
            ]
            await add_revoked_jtis(conn, entries, at)
            await conn.execute(INSERT_REFRESH, refresh_values(new))
        list_locally(self._revocations, entries)
        return True

    async def revoke_family(self, family_id: UUID, at: datetime) -> None:
        """Revoke the family and its unexpired access tokens."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(REFRESH)
                .where(REFRESH.c.family_id == family_id, REFRESH.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            result = await conn.execute(
                select(REFRESH.c.access_jti, REFRESH.c.access_expires_at).where(
                    REFRESH.c.family_id == family_id,
                    REFRESH.c.access_jti.is_not(None),
                    REFRESH.c.access_expires_at > at,
                )
            )
            entries = [(jti, exp) for jti, exp in result.all()]
            await add_revoked_jtis(conn, entries, at)
        list_locally(self._revocations, entries)


class SqlAuthorizationCodeStore:
    """``AuthorizationCodeStore`` over ``authorization_codes``, but for ``redeem`` (per backend)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = utcnow,
        revocations: RevocationList | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._revocations = revocations

    async def save(self, code: CodeRecord) -> None:
        """Store a new code (hash only)."""
        async with self._db.statement() as conn:
            await conn.execute(
                insert(CODES).values(
                    code_hash=code.code_hash,
                    client_id=code.client_id,
                    user_id=code.user_id,
                    redirect_uri=code.redirect_uri,
                    scope=join_set(code.scope),
                    code_challenge=code.code_challenge,
                    code_challenge_method=code.code_challenge_method,
                    auth_time=code.auth_time,
                    created_at=self._clock(),
                    expires_at=code.expires_at,
                    nonce=code.nonce,
                    sid=code.sid,
                )
            )

    async def get(self, code_hash: str) -> CodeRecord | None:
        """Return the code by hash (with its user), used or not."""
        async with self._db.statement() as conn:
            row = (await conn.execute(_CODE_BY_HASH, {"hash": code_hash})).first()
        return code_from(row._mapping, user_from(row._mapping, "u_")) if row else None

    async def revoke_issued(self, code_hash: str, at: datetime) -> None:
        """Put the access token the code's redemption issued on the revocation list (code replay)."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(CODES.c.access_jti, CODES.c.access_expires_at).where(
                        CODES.c.code_hash == code_hash
                    )
                )
            ).first()
            if row is None or row.access_jti is None or row.access_expires_at is None:
                return
            if row.access_expires_at <= at:
                return  # already dead; nothing to list
            entries = [(row.access_jti, row.access_expires_at)]
            # Concurrent replays race to list the same jti: insert-or-ignore, not check-then-insert.
            await add_revoked_jtis(conn, entries, at)
        list_locally(self._revocations, entries)
