"""Indexes of the migrated schema: none is redundant, and the token tables keep only what their queries use.

Every refresh and code redemption inserts into ``refresh_tokens`` and updates a row, and every index is paid for
on each of those writes, so an index that no query (or foreign-key cascade) needs is a cost without a use. The
family lookups still have to be index scans once ``ix_refresh_tokens_family_id`` is gone: its columns lead
``ix_refresh_tokens_family_live``.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from oauth_service.db import tables  # noqa: F401  (registers every table on SQLModel.metadata)
from oauth_service.db.stores.common import SqlRefreshTokenStore
from oauth_service.db.stores.units import Database

FAMILY_INDEX = "ix_refresh_tokens_family_live"

# What each index is for: the audit behind migration 0002. Adding an index to these write-heavy tables means
# adding it here with the query that needs it.
EXPECTED_INDEXES: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "refresh_tokens": {
        # Every refresh, introspection and revocation reads the token by hash; hashes are unique.
        "ix_refresh_tokens_token_hash": (("token_hash",), True),
        # revoke_family (UPDATE and SELECT), get_successor, housekeeping's GROUP BY family_id.
        FAMILY_INDEX: (("family_id", "revoked_at"), False),
        # Deleting a client cascades to its tokens (ON DELETE CASCADE needs the referencing column indexed).
        "ix_refresh_tokens_client_id": (("client_id",), False),
        # Deactivation and password change revoke by user_id; deleting a user cascades.
        "ix_refresh_tokens_user_id": (("user_id",), False),
        # The end of a browser session revokes its tokens by sid (OpenID Connect logout). Partial (sid IS NOT
        # NULL), so the tokens of other grants, which have no session, do not pay for it on insert.
        "ix_refresh_tokens_sid": (("sid",), False),
    },
    "authorization_codes": {
        # Housekeeping deletes codes with expires_at <= now (the leading condition of its AND).
        "ix_authorization_codes_expires_at": (("expires_at",), False),
        # ON DELETE CASCADE from clients and users.
        "ix_authorization_codes_client_id": (("client_id",), False),
        "ix_authorization_codes_user_id": (("user_id",), False),
    },
}


def _indexes(
    connection: Connection, table: str
) -> dict[str, tuple[tuple[str, ...], bool]]:
    return {
        str(index["name"]): (
            tuple(str(name) for name in index["column_names"]),
            bool(index["unique"]),
        )
        for index in inspect(connection).get_indexes(table)
    }


def _redundant_indexes(connection: Connection) -> list[str]:
    """Non-unique indexes whose columns lead another index or the primary key of the same table."""
    found: list[str] = []
    for table in sorted(SQLModel.metadata.tables):
        indexes = _indexes(connection, table)
        primary = tuple(
            inspect(connection).get_pk_constraint(table)["constrained_columns"]
        )
        keys = [columns for columns, _ in indexes.values()] + [primary]
        for name, (columns, unique) in indexes.items():
            covering = [
                other
                for other in keys
                if other is not columns and other[: len(columns)] == columns
            ]
            if covering and not unique:
                found.append(f"{table}.{name} {columns} is led by {covering[0]}")
    return found


async def test_no_index_is_a_prefix_of_another_index(
    migrated_engine: AsyncEngine,
) -> None:
    async with migrated_engine.connect() as conn:
        assert await conn.run_sync(_redundant_indexes) == []


async def test_token_tables_keep_only_the_indexes_their_queries_use(
    migrated_engine: AsyncEngine,
) -> None:
    async with migrated_engine.connect() as conn:
        found = {
            table: await conn.run_sync(_indexes, table) for table in EXPECTED_INDEXES
        }
    assert found == EXPECTED_INDEXES


async def _family_statements(
    engine: AsyncEngine,
) -> list[tuple[str, Sequence[Any]]]:
    """The statements ``revoke_family`` and ``get_successor`` run, as sent to the driver."""
    sent: list[tuple[str, Sequence[Any]]] = []

    def record(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "refresh_tokens.family_id =" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        store = SqlRefreshTokenStore(Database(engine))
        await store.revoke_family(uuid.uuid4(), datetime.now(UTC))
        await store.get_successor(uuid.uuid4())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return sent


async def test_family_lookups_use_the_family_index(
    migrated_engine: AsyncEngine,
) -> None:
    statements = await _family_statements(migrated_engine)
    # revoke_family's UPDATE and SELECT, get_successor's SELECT.
    assert len(statements) == 3
    postgres = migrated_engine.dialect.name == "postgresql"
    for statement, parameters in statements:
        async with migrated_engine.connect() as conn:
            if postgres:
                # On an empty table a sequential scan is cheapest; forbid it to see what index the plan takes.
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                explain = "EXPLAIN "
            else:
                explain = "EXPLAIN QUERY PLAN "
            result = await conn.exec_driver_sql(explain + statement, parameters)
            plan = "\n".join(str(row[-1]) for row in result.all())
            await conn.rollback()
        assert FAMILY_INDEX in plan, f"{statement}\n{plan}"
