"""Plumbing shared by the CLI commands: settings, one transaction per command, error lines, JSON output."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.db.errors import AdminError
from oauth_service.oauth.models import User
from oauth_service.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class Context:
    """What a command's async body gets: a session (committed on success), settings and the hasher."""

    session: AsyncSession
    settings: Settings
    passwords: PasswordHasher


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """Load settings from the environment; invalid settings exit 2 with one line."""
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def hasher_for(settings: Settings) -> PasswordHasher:
    """Build the argon2id hasher with the configured parameters."""
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )


async def _in_transaction(
    settings: Settings, work: Callable[[Context], Awaitable[T]]
) -> T:
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(Context(session, settings, hasher_for(settings)))
            await session.commit()
            return result
    finally:
        await engine.dispose()


def run_in_transaction(work: Callable[[Context], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction: committed on success, nothing written on any error."""
    settings = settings_or_exit()
    try:
        return asyncio.run(_in_transaction(settings, work))
    except AdminError as exc:
        fail(str(exc))
    except DBAPIError as exc:
        detail = (
            str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        )
        fail(
            f"database error: {detail} (is it up and migrated? run: oauth-service migrate)",
            EXIT_FAILURE,
        )
    except OSError as exc:
        fail(f"cannot reach the database: {exc}", EXIT_FAILURE)


async def _with_engine(
    settings: Settings, work: Callable[[Settings, AsyncEngine], Awaitable[T]]
) -> T:
    engine = make_engine(settings)
    try:
        return await work(settings, engine)
    finally:
        await engine.dispose()


def run_with_engine(work: Callable[[Settings, AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` with an engine, for commands that manage their own transactions.

    Database errors are reported as in ``run_in_transaction``.
    """
    settings = settings_or_exit()
    try:
        return asyncio.run(_with_engine(settings, work))
    except DBAPIError as exc:
        detail = (
            str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        )
        fail(
            f"database error: {detail} (is it up and migrated? run: oauth-service migrate)",
            EXIT_FAILURE,
        )
    except OSError as exc:
        fail(f"cannot reach the database: {exc}", EXIT_FAILURE)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def split_words(value: str) -> list[str]:
    """Split a space- (or comma-) separated option value."""
    return [word for word in value.replace(",", " ").split() if word]


def user_json(user: User) -> dict[str, Any]:
    """The public fields of a user (never the hash)."""
    return {
        "id": user.id,
        "email": user.email,
        "is_active": user.is_active,
        "is_admin": user.is_admin,
    }
