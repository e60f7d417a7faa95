"""Migrations: they apply on SQLite and Postgres, agree with the models, reverse cleanly and ship in the wheel.

The round-trip runs on a scratch database (a fresh SQLite file, or a separate Postgres schema) so the shared
test database is left alone.
"""

import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from oauth_service.db import tables  # noqa: F401  (registers every table on SQLModel.metadata)
from oauth_service.db.migrations import downgrade, upgrade

SCRATCH_SCHEMA = "migration_scratch"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def scratch_engine(db_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/scratch.db")
        yield engine
        await engine.dispose()
        return
    admin = create_async_engine(db_url)
    async with admin.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCRATCH_SCHEMA}"))
    engine = create_async_engine(
        db_url, connect_args={"server_settings": {"search_path": SCRATCH_SCHEMA}}
    )
    yield engine
    await engine.dispose()
    async with admin.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE"))
    await admin.dispose()


def _diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    return list(compare_metadata(context, SQLModel.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrated_database_is_at_head_with_default_scopes(
    migrated_engine: AsyncEngine,
) -> None:
    async with migrated_engine.connect() as conn:
        version = (
            await conn.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one()
        scopes = (
            await conn.execute(
                text("SELECT name, description FROM scopes ORDER BY name")
            )
        ).all()
        names = await conn.run_sync(_table_names)
    assert version == "0004"
    assert [name for name, _ in scopes] == [
        "admin",
        "email",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ]
    assert all(description for _, description in scopes)
    assert set(SQLModel.metadata.tables) <= names


async def test_models_and_migrations_agree(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


async def test_downgrade_to_base_and_upgrade_again(scratch_engine: AsyncEngine) -> None:
    await upgrade(scratch_engine)
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []
    await downgrade(scratch_engine, "base")
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_table_names) <= {"alembic_version"}
    await upgrade(scratch_engine)
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []
        count = (await conn.execute(text("SELECT COUNT(*) FROM scopes"))).scalar_one()
    assert count == 7


def _index_snapshot(connection: Connection) -> dict[str, list[tuple[object, ...]]]:
    inspector = inspect(connection)
    return {
        table: sorted(
            (index["name"], tuple(index["column_names"]), index["unique"])
            for index in inspector.get_indexes(table)
        )
        # Only the tables the revision has: later ones (subject_cutoffs, 0003) are absent at 0001.
        for table in sorted(
            set(SQLModel.metadata.tables) & set(inspector.get_table_names())
        )
    }


async def test_downgrade_of_0002_recreates_the_indexes_of_0001(
    scratch_engine: AsyncEngine,
) -> None:
    await upgrade(scratch_engine, "0001")
    async with scratch_engine.connect() as conn:
        at_0001 = await conn.run_sync(_index_snapshot)
    await upgrade(scratch_engine)
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_index_snapshot) != at_0001
    await downgrade(scratch_engine, "0001")
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_index_snapshot) == at_0001
    await upgrade(scratch_engine)
    async with scratch_engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


@pytest.mark.slow
def test_wheel_ships_migrations_and_migrate_runs_outside_checkout(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("oauth_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "oauth_service/_alembic/env.py" in names
    assert any(n.startswith("oauth_service/_alembic/versions/0001_") for n in names)

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", str(site), str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/installed.db",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import oauth_service.db.migrations as m; print(m.script_location())"],
        cwd=workdir, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == str(site / "oauth_service" / "_alembic")
    result = subprocess.run(
        [sys.executable, "-m", "oauth_service", "migrate"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("migrated to head")
