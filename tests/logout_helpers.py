"""Set-up shared by the logout tests: browser sessions with a ``sid``, the clients they served, refresh tokens."""

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import col

from oauth_service.crypto.tokens import new_opaque_token, token_hash
from oauth_service.db import admin
from oauth_service.db.tables import (
    BackchannelLogoutRow,
    LoginSessionClientRow,
    LoginSessionRow,
    RefreshTokenRow,
    RevokedTokenRow,
)
from oauth_service.oauth.models import Client
from oauth_service.runtime import Runtime


async def add_login_session(runtime: Runtime, user_id: str) -> str:
    """Store a live browser session for ``user_id`` (as the login page does); return its sid."""
    now = runtime.clock()
    sid = secrets.token_urlsafe(16)
    async with runtime.sessionmaker() as session:
        session.add(
            LoginSessionRow(
                id_hash=token_hash(new_opaque_token()),
                user_id=user_id,
                auth_time=now,
                created_at=now,
                expires_at=now + timedelta(hours=1),
                sid=sid,
            )
        )
        await session.commit()
    return sid


async def session_sid(runtime: Runtime, user_id: str) -> str:
    """The sid of the user's (only) browser session, given one if the login page stored none."""
    async with runtime.sessionmaker() as session:
        row = await session.scalar(
            select(LoginSessionRow).where(col(LoginSessionRow.user_id) == user_id)
        )
        assert row is not None
        if row.sid is None:
            row.sid = secrets.token_urlsafe(16)
        sid = row.sid
        await session.commit()
    return sid


async def add_session_client(
    runtime: Runtime, sid: str, client_id: str, user_id: str
) -> None:
    """Record that ``client_id`` got tokens in session ``sid`` (as the authorization endpoint does)."""
    async with runtime.sessionmaker() as session:
        if await session.get(LoginSessionClientRow, (sid, client_id)) is None:
            session.add(
                LoginSessionClientRow(
                    sid=sid,
                    client_id=client_id,
                    user_id=user_id,
                    created_at=runtime.clock(),
                )
            )
        await session.commit()


async def add_refresh_token(
    runtime: Runtime, *, client_id: str, user_id: str, sid: str | None, scope: str
) -> tuple[uuid.UUID, str]:
    """Store a live refresh token of session ``sid`` with a live access token; return (row id, access jti)."""
    now = runtime.clock()
    token_id = uuid.uuid4()
    jti = secrets.token_hex(16)
    async with runtime.sessionmaker() as session:
        session.add(
            RefreshTokenRow(
                id=token_id,
                token_hash=token_hash(new_opaque_token()),
                family_id=uuid.uuid4(),
                client_id=client_id,
                user_id=user_id,
                scope=scope,
                auth_time=now,
                issued_at=now,
                expires_at=now + timedelta(days=1),
                family_expires_at=now + timedelta(days=30),
                access_jti=jti,
                access_expires_at=now + timedelta(minutes=10),
                sid=sid,
            )
        )
        await session.commit()
    return token_id, jti


async def refresh_revoked_at(runtime: Runtime, token_id: uuid.UUID) -> datetime | None:
    """When the refresh token was revoked, or None."""
    async with runtime.sessionmaker() as session:
        row = await session.get(RefreshTokenRow, token_id)
        assert row is not None
        return row.revoked_at


async def jti_revoked(runtime: Runtime, jti: str) -> bool:
    """Whether the access-token id is on the revocation list in the database."""
    async with runtime.sessionmaker() as session:
        return await session.get(RevokedTokenRow, jti) is not None


async def outbox(runtime: Runtime) -> list[BackchannelLogoutRow]:
    """The back-channel logouts still to deliver, by client."""
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(BackchannelLogoutRow).order_by(col(BackchannelLogoutRow.client_id))
        )
        return list(rows)


async def make_due(runtime: Runtime) -> None:
    """Make every outbox row due now (skip the backoff instead of waiting for it)."""
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(BackchannelLogoutRow).values(next_attempt_at=runtime.clock())
        )
        await session.commit()


async def make_logout_client(
    runtime: Runtime,
    client_id: str,
    *,
    backchannel_logout_uri: str | None = None,
    post_logout_redirect_uris: tuple[str, ...] = (),
    session_required: bool = False,
) -> Client:
    """Register a confidential code-flow client with logout settings (``db.admin``, as the CLI does)."""
    async with runtime.sessionmaker() as session:
        client, _ = await admin.create_client(
            session,
            name=client_id,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=("https://app.example/cb",),
            scopes=("openid", "profile", "offline_access", "read"),
            client_id=client_id,
            post_logout_redirect_uris=post_logout_redirect_uris,
            backchannel_logout_uri=backchannel_logout_uri,
            backchannel_logout_session_required=session_required,
            clock=runtime.clock,
        )
        await session.commit()
    return client
