"""SQLModel tables. Table classes never leave ``oauth_service.db``; stores map rows to ``oauth.models``.

Secrets (refresh tokens, codes, client secrets, session ids) are stored only as SHA-256 hex digests.
Scope and grant-type sets are stored in their wire form: space-separated, sorted.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Text,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from oauth_service.db.types import UTCDateTime


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index)
    )


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            String(255),
            ForeignKey(target, ondelete="CASCADE"),
            nullable=nullable,
            index=index,
        ),
    )


class UserRow(SQLModel, table=True):
    """A resource owner; ``email_normalized`` makes emails unique case-insensitively."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(max_length=320)
    email_normalized: str = Field(max_length=320, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    is_admin: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # OpenID Connect Core §5.1 standard claims (``updated_at`` above is the claim's too).
    name: str | None = Field(default=None, max_length=255)
    given_name: str | None = Field(default=None, max_length=255)
    family_name: str | None = Field(default=None, max_length=255)
    preferred_username: str | None = Field(default=None, max_length=255)
    picture: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locale: str | None = Field(default=None, max_length=35)
    zoneinfo: str | None = Field(default=None, max_length=64)
    email_verified: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
    )


class ClientRow(SQLModel, table=True):
    """A registered client."""

    __tablename__ = "clients"

    client_id: str = Field(primary_key=True, max_length=255)
    secret_hash: str | None = Field(default=None, max_length=128)
    name: str = Field(max_length=255)
    is_public: bool = False
    grant_types: str = Field(default="", sa_column=Column(Text, nullable=False))
    redirect_uris: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    scopes: str = Field(default="", sa_column=Column(Text, nullable=False))
    token_endpoint_auth_method: str = Field(
        default="client_secret_basic", max_length=32
    )
    is_first_party: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # OpenID Connect RP-Initiated Logout §3.1 and Back-Channel Logout §2.2.
    post_logout_redirect_uris: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
    )
    backchannel_logout_uri: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True)
    )
    backchannel_logout_session_required: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
    )


class ScopeRow(SQLModel, table=True):
    """A scope with the description shown on the consent page."""

    __tablename__ = "scopes"

    name: str = Field(primary_key=True, max_length=128)
    description: str = Field(default="", max_length=512)
    created_at: datetime = _ts()


class AuthorizationCodeRow(SQLModel, table=True):
    """An authorization code, bound to client, redirect URI, scope, user, auth time and PKCE challenge."""

    __tablename__ = "authorization_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = _fk("clients.client_id")
    user_id: str = _fk("users.id")
    redirect_uri: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True)
    )
    scope: str = Field(default="", sa_column=Column(Text, nullable=False))
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=8)
    auth_time: datetime = _ts()
    created_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)
    used_at: datetime | None = _ts(nullable=True)
    # What the redemption issued, so a replay can revoke it (RFC 6749 §4.1.2). Read only with the code (by
    # hash), so ``family_id`` has no index: one would only cost every redemption's UPDATE (migration 0002).
    family_id: uuid.UUID | None = None
    access_jti: str | None = Field(default=None, max_length=64)
    access_expires_at: datetime | None = _ts(nullable=True)
    # OpenID Connect: the nonce the ID token echoes, and the browser session the code was issued in.
    nonce: str | None = Field(default=None, max_length=512)
    sid: str | None = Field(default=None, max_length=64)


class RefreshTokenRow(SQLModel, table=True):
    """A refresh token; rotation links tokens into a family (RFC 9700 §4.14.2)."""

    __tablename__ = "refresh_tokens"
    # Every refresh inserts a row, so each index here costs the hot path (migration 0002 dropped those no
    # query used). This one serves every lookup by family through its leading column, so family_id has no
    # index of its own.
    __table_args__ = (
        Index("ix_refresh_tokens_family_live", "family_id", "revoked_at"),
        # Partial: only tokens bound to a browser session (OpenID Connect) pay for it on insert.
        Index(
            "ix_refresh_tokens_sid",
            "sid",
            postgresql_where=text("sid IS NOT NULL"),
            sqlite_where=text("sid IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    family_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    client_id: str = _fk("clients.client_id")
    user_id: str | None = _fk("users.id", nullable=True)
    scope: str = Field(default="", sa_column=Column(Text, nullable=False))
    auth_time: datetime | None = _ts(nullable=True)
    issued_at: datetime = _ts()
    expires_at: datetime = _ts()
    family_expires_at: datetime = _ts()
    rotated_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    # The access token minted together with this refresh token; revoked with the family.
    access_jti: str | None = Field(default=None, max_length=64)
    access_expires_at: datetime | None = _ts(nullable=True)
    # The browser session of the sign-in that started the family (OpenID Connect ``sid``), if any.
    sid: str | None = Field(default=None, max_length=64)


class RevokedTokenRow(SQLModel, table=True):
    """A revoked access token id, kept until the token would have expired."""

    __tablename__ = "revoked_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _ts(index=True)
    revoked_at: datetime = _ts()


class SubjectCutoffRow(SQLModel, table=True):
    """Every access token of a user or client issued at or before ``cutoff_at`` is refused (``oauth.cutoffs``).

    Kept until ``expires_at``, when every token it refuses has expired anyway.
    """

    __tablename__ = "subject_cutoffs"

    kind: str = Field(primary_key=True, max_length=8)  # "user" or "client"
    subject_id: str = Field(primary_key=True, max_length=255)
    cutoff_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)


class SigningKeyRow(SQLModel, table=True):
    """A JWT signing key shared by every replica.

    ``state``: ``pending`` (published, not yet signing), ``active`` (signing), ``retired`` (published until
    ``expires_at``, no longer signing).
    """

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    private_key: str = Field(sa_column=Column(Text, nullable=False))
    public_jwk: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    state: str = Field(default="active", max_length=16, index=True)
    created_at: datetime = _ts()
    activates_at: datetime = _ts()
    retired_at: datetime | None = _ts(nullable=True)
    expires_at: datetime | None = _ts(nullable=True)


class ConsentRow(SQLModel, table=True):
    """Scopes a user has granted a client, remembered for later authorizations."""

    __tablename__ = "consents"

    user_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    client_id: str = Field(
        sa_column=Column(
            String(255),
            ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    scope: str = Field(default="", sa_column=Column(Text, nullable=False))
    granted_at: datetime = _ts()


class LoginSessionRow(SQLModel, table=True):
    """A browser login session; the cookie carries the raw id, the table its hash."""

    __tablename__ = "login_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = _fk("users.id")
    auth_time: datetime = _ts()
    created_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)
    # The session's public id (OpenID Connect ``sid``); not the cookie's secret.
    sid: str | None = Field(default=None, max_length=64, unique=True, index=True)


class LoginSessionClientRow(SQLModel, table=True):
    """A client that received a code or token in a browser session: told by back-channel logout when it ends."""

    __tablename__ = "login_session_clients"

    sid: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(
        sa_column=Column(
            String(255),
            ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    user_id: str = Field(max_length=36, index=True)
    created_at: datetime = _ts()


class BackchannelLogoutRow(SQLModel, table=True):
    """A logout token still to deliver (Back-Channel Logout 1.0): an outbox row, deleted once delivered."""

    __tablename__ = "backchannel_logouts"

    id: uuid.UUID = Field(primary_key=True)
    client_id: str = _fk("clients.client_id", index=False)
    subject: str = Field(max_length=255)
    sid: str | None = Field(default=None, max_length=64)
    reason: str = Field(max_length=32)
    created_at: datetime = _ts()
    next_attempt_at: datetime = _ts(index=True)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=255)


class AuthorizationRequestRow(SQLModel, table=True):
    """A validated authorization request carried across the login and consent pages."""

    __tablename__ = "authorization_requests"

    id_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = _fk("clients.client_id")
    params: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)


class ServerSecretRow(SQLModel, table=True):
    """Server-wide secrets (cookie signing) generated once and shared by every replica."""

    __tablename__ = "server_secrets"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()


class NoteRow(SQLModel, table=True):
    """A note of the sample protected API, owned by the token's subject."""

    __tablename__ = "notes"

    id: uuid.UUID = Field(primary_key=True)
    owner: str = Field(max_length=255, index=True)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()
