"""A start-up failure the operator can fix, reported by uvicorn in one line instead of a traceback.

Starlette sends the formatted traceback with the ASGI ``lifespan.startup.failed`` message and uvicorn logs it:
about 160 lines, inside one JSON log line, for a database that is only not migrated yet. The lifespan names such
failures (``startup_problem``); the router's lifespan handler then sends that line instead. Failures it does not
name (bugs) keep their traceback.
"""

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from starlette.types import Message, Receive, Scope, Send

from oauth_service.crypto.key_encryption import KeyEncryptionError
from oauth_service.settings import Settings


def startup_problem(exc: BaseException, settings: Settings) -> str | None:
    """One line naming the problem and the fix, for failures of the database or the key-encryption key."""
    if isinstance(exc, KeyEncryptionError):
        return (
            f"cannot start: {exc}"  # names OAUTH_KEY_ENCRYPTION_KEY; never key material
        )
    if isinstance(exc, DBAPIError):
        # The driver's first line only: SQLAlchemy's message carries the statement (``db.errors``).
        lines = str(exc.orig).strip().splitlines() if exc.orig else []
        detail = lines[0] if lines else type(exc).__name__
        return f"cannot start: database error: {detail} (is it up and migrated? run: oauth-service migrate)"
    if isinstance(exc, OSError):
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        return f"cannot start: cannot reach the database {url}: {exc}"
    return None


def report_startup_failure_in_one_line(
    app: FastAPI, problem: Callable[[], str | None]
) -> None:
    """Make ``lifespan.startup.failed`` carry ``problem()`` instead of the traceback when there is one.

    The router's lifespan handler is wrapped, not the app: a middleware would cost every request a call.
    """
    handle = app.router.lifespan

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_one_line(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                line = problem()
                if line is not None:
                    message = {**message, "message": line}
            await send(message)

        await handle(scope, receive, send_one_line)

    app.router.lifespan = lifespan  # type: ignore[method-assign]  # instance-level, this app's router only
