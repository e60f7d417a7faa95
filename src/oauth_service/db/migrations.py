"""Run Alembic migrations from a source checkout or an installed wheel.

The wheel carries the top-level ``alembic/`` folder as ``oauth_service/_alembic`` (see pyproject's
``force-include``); a checkout uses ``alembic/`` at the repository root. The Alembic config is built in code, so
``oauth-service migrate`` needs no ``alembic.ini`` in the working directory.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def script_location() -> Path:
    """Return the folder holding ``env.py`` and ``versions/``."""
    installed = _PACKAGE_DIR / "_alembic"
    if (installed / "env.py").is_file():
        return installed
    checkout = _PACKAGE_DIR.parent.parent / "alembic"
    if (checkout / "env.py").is_file():
        return checkout
    raise FileNotFoundError(
        "Alembic migrations not found (neither in the package nor the checkout)"
    )


def alembic_config(database_url: str) -> Config:
    """Build an Alembic config pointing at the migrations and ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` on one of its connections."""

    def _run(connection: Connection) -> None:
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Downgrade the database behind ``engine`` to ``revision``."""

    def _run(connection: Connection) -> None:
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands against the migrations this code carries."""

    current: str | None  # None: never migrated (no ``alembic_version`` row)
    heads: tuple[str, ...]
    known: bool  # ``current`` is one of these migrations (else a newer version of the service migrated it)

    @property
    def problem(self) -> str | None:
        """What keeps the service from running on this schema, in a few words with the fix; None when at head."""
        if self.current in self.heads:
            return None
        head = ", ".join(self.heads)
        if self.current is None:
            return "is not migrated; run: oauth-service migrate"
        if not self.known:
            return (
                f"is at revision {self.current}, which this version of oauth-service does not know "
                f"(its newest is {head}); run the version that migrated it, or a newer one"
            )
        return f"is at revision {self.current}, not {head}; run: oauth-service migrate"


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Read the database's migration revision (one query) and compare it with the migrations' head."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    script = ScriptDirectory(str(script_location()))
    try:
        known = current is None or script.get_revision(current) is not None
    except CommandError:
        known = False
    return SchemaState(current, tuple(script.get_heads()), known)
