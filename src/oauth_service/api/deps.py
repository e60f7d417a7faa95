"""Per-request dependencies, as ``Annotated`` aliases.

``SessionDep`` is one database session per request. Routes that write call ``await session.commit()``
themselves *before* building the response, so a token is never sent for rows that were not committed; whatever
was not committed is rolled back when the request ends.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from oauth_service.runtime import Runtime
from oauth_service.settings import Settings


def get_runtime(request: Request) -> Runtime:
    """Return the process-wide runtime built by the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    """Return the settings."""
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Open a session for this request; uncommitted work is rolled back at the end."""
    async with runtime.sessionmaker() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await session.rollback()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
