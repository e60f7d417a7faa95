"""Drop the indexes of refresh_tokens and authorization_codes that no query uses.

Every refresh and every code redemption inserts a refresh token and updates a row of one of these tables, and
each index is maintained on every insert (and on an update of an indexed column), so an index that nothing reads
is pure write cost on the token endpoint's hot path. Dropped:

* ``ix_refresh_tokens_family_id``: ``ix_refresh_tokens_family_live`` (family_id, revoked_at) leads with the same
  column and serves every lookup by family (revocation, successor lookup, housekeeping's GROUP BY).
* ``ix_refresh_tokens_family_expires_at``: only housekeeping filters on ``family_expires_at``, inside an OR whose
  other arms (an IN-subquery, ``revoked_at``/``expires_at``) no index serves, so Postgres and SQLite scan the
  table for that delete whether the index exists or not.
* ``ix_authorization_codes_family_id``: no query selects codes by family (a replayed code is found by its hash,
  and its family is then revoked in ``refresh_tokens``), yet every redemption wrote it, which also kept that
  UPDATE from being a heap-only (HOT) update on Postgres.

``DROP INDEX`` takes an ACCESS EXCLUSIVE lock on the table on Postgres: it waits behind any long transaction
on it (housekeeping's delete, say), and every token request queues behind that wait. The migration runs in
the caller's transaction (``DROP INDEX CONCURRENTLY`` cannot), so on Postgres it sets a 5 s ``lock_timeout``:
it fails and can be rerun, instead of stalling the service. The downgrade's ``CREATE INDEX`` blocks writes to
the table while it builds, as any index built in a transaction does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_DROPPED = (
    ("ix_refresh_tokens_family_id", "refresh_tokens"),
    ("ix_refresh_tokens_family_expires_at", "refresh_tokens"),
    ("ix_authorization_codes_family_id", "authorization_codes"),
)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Give up after a few seconds rather than hold every token request behind a queued lock; rerun later.
        op.execute("SET LOCAL lock_timeout = '5s'")
    for name, table in _DROPPED:
        op.drop_index(op.f(name), table_name=table)


def downgrade() -> None:
    # Exactly as 0001 created them.
    op.create_index(
        op.f("ix_authorization_codes_family_id"),
        "authorization_codes",
        ["family_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_refresh_tokens_family_expires_at"),
        "refresh_tokens",
        ["family_expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_refresh_tokens_family_id"),
        "refresh_tokens",
        ["family_id"],
        unique=False,
    )
