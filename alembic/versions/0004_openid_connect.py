"""OpenID Connect: users' standard claims, logout settings of clients, nonce and session ids, back-channel outbox.

- ``users``: the OIDC Core §5.1 profile claims (``updated_at`` exists already).
- ``clients``: ``post_logout_redirect_uris`` (RP-Initiated Logout §3.1), ``backchannel_logout_uri`` and
  ``backchannel_logout_session_required`` (Back-Channel Logout §2.2).
- ``authorization_codes``: the ``nonce`` to echo and the browser session (``sid``) the code was issued in;
  ``refresh_tokens``: that ``sid``, with a partial index so only session-bound tokens pay for it.
- ``login_sessions.sid``: the public id of a browser session (the cookie carries a different secret).
- ``login_session_clients``: which clients received tokens in which session, for back-channel logout.
- ``backchannel_logouts``: the outbox of logout tokens to deliver, so a notification survives a restart.
- The scopes ``openid``, ``profile``, ``email`` and ``offline_access`` with their consent-page descriptions.

Every new column is nullable or has a server default, so the migration rewrites no table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OIDC_SCOPES = {
    "openid": "Sign you in to the application with your account",
    "profile": "Your name, username, picture, locale and time zone",
    "email": "Your email address and whether it is verified",
    "offline_access": "Stay connected to the application after you sign out here",
}
_PROFILE_COLUMNS = (
    ("name", 255),
    ("given_name", 255),
    ("family_name", 255),
    ("preferred_username", 255),
    ("locale", 35),
    ("zoneinfo", 64),
)


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        for name, length in _PROFILE_COLUMNS:
            users.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        users.add_column(sa.Column("picture", sa.Text(), nullable=True))
        users.add_column(
            sa.Column(
                "email_verified",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("clients") as clients:
        clients.add_column(
            sa.Column(
                "post_logout_redirect_uris",
                sa.JSON(),
                nullable=False,
                server_default="[]",
            )
        )
        clients.add_column(
            sa.Column("backchannel_logout_uri", sa.Text(), nullable=True)
        )
        clients.add_column(
            sa.Column(
                "backchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("authorization_codes") as codes:
        codes.add_column(sa.Column("nonce", sa.String(length=512), nullable=True))
        codes.add_column(sa.Column("sid", sa.String(length=64), nullable=True))
    with op.batch_alter_table("refresh_tokens") as tokens:
        tokens.add_column(sa.Column("sid", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_refresh_tokens_sid",
        "refresh_tokens",
        ["sid"],
        unique=False,
        postgresql_where=sa.text("sid IS NOT NULL"),
        sqlite_where=sa.text("sid IS NOT NULL"),
    )
    with op.batch_alter_table("login_sessions") as sessions:
        sessions.add_column(sa.Column("sid", sa.String(length=64), nullable=True))
    op.create_index("ix_login_sessions_sid", "login_sessions", ["sid"], unique=True)
    op.create_table(
        "login_session_clients",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sid", "client_id"),
    )
    op.create_index(
        op.f("ix_login_session_clients_user_id"),
        "login_session_clients",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "backchannel_logouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_backchannel_logouts_next_attempt_at"),
        "backchannel_logouts",
        ["next_attempt_at"],
        unique=False,
    )
    scopes = sa.table(
        "scopes",
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    existing = {
        row[0]
        for row in op.get_bind().execute(
            sa.select(scopes.c.name).where(scopes.c.name.in_(list(OIDC_SCOPES)))
        )
    }
    now = datetime.now(UTC)
    missing = [
        {"name": name, "description": text, "created_at": now}
        for name, text in OIDC_SCOPES.items()
        if name not in existing
    ]
    if missing:
        op.bulk_insert(scopes, missing)


def downgrade() -> None:
    op.drop_index(
        op.f("ix_backchannel_logouts_next_attempt_at"), table_name="backchannel_logouts"
    )
    op.drop_table("backchannel_logouts")
    op.drop_index(
        op.f("ix_login_session_clients_user_id"), table_name="login_session_clients"
    )
    op.drop_table("login_session_clients")
    op.drop_index("ix_login_sessions_sid", table_name="login_sessions")
    with op.batch_alter_table("login_sessions") as sessions:
        sessions.drop_column("sid")
    op.drop_index("ix_refresh_tokens_sid", table_name="refresh_tokens")
    with op.batch_alter_table("refresh_tokens") as tokens:
        tokens.drop_column("sid")
    with op.batch_alter_table("authorization_codes") as codes:
        codes.drop_column("sid")
        codes.drop_column("nonce")
    with op.batch_alter_table("clients") as clients:
        clients.drop_column("backchannel_logout_session_required")
        clients.drop_column("backchannel_logout_uri")
        clients.drop_column("post_logout_redirect_uris")
    with op.batch_alter_table("users") as users:
        users.drop_column("email_verified")
        users.drop_column("picture")
        for name, _length in reversed(_PROFILE_COLUMNS):
            users.drop_column(name)
