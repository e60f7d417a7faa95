"""Sample protected API under ``/api/v1``: who am I, and notes owned by the token's subject.

Shows the resource-server pattern (RFC 6750 §2.1 header-only bearer tokens, §3 challenges): ``GET /me`` needs
any valid token, reading notes needs ``read``, writing or deleting them needs ``write``.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from oauth_service.api.bearer import (
    OAUTH2_SCHEME,
    ReadTokenDep,
    WriteTokenDep,
    token_user,
)
from oauth_service.api.deps import RuntimeDep, SessionDep
from oauth_service.api.json_body import JsonBody
from oauth_service.api.request_route import RequestRoute
from oauth_service.api.route_table import RouteTable
from oauth_service.db import notes
from oauth_service.oauth.scopes import format_scope
from oauth_service.resource_server.fastapi import ResourceProtector
from oauth_service.runtime import Runtime

routes = RouteTable(prefix="/api/v1", tags=["sample API"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid, expired or revoked token"},
    403: {"description": "The token lacks a required scope"},
}
NoteId = Annotated[uuid.UUID, Path(description="The note's id")]
_ANY_SCOPE: frozenset[str] = frozenset()


class Me(BaseModel):
    """The user or client behind the access token."""

    type: Literal["user", "client"]
    sub: str
    client_id: str
    scope: str
    email: str | None = None
    is_admin: bool | None = None


class NoteIn(BaseModel):
    """A new note."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


class NoteOut(BaseModel):
    """A stored note."""

    id: uuid.UUID
    title: str
    body: str
    created_at: datetime


class NoteList(BaseModel):
    """The caller's notes, newest first."""

    notes: list[NoteOut]


def _out(note: notes.Note) -> NoteOut:
    return NoteOut(
        id=note.id, title=note.title, body=note.body, created_at=note.created_at
    )


def _not_found() -> JSONResponse:
    return JSONResponse(
        {"error": "not_found", "error_description": "No such note."}, status_code=404
    )


async def me(request: Request) -> JSONResponse:
    """Return the user (authorization code, implicit, password) or the client (client credentials).

    The body is built directly (``Me`` documents it): FastAPI's response-model validation and the runtime
    dependency cost more than the rest of this route for a client token. The token is checked by the app's
    ``ResourceProtector`` called here, not through ``TokenDep``, whose dependency nodes FastAPI would solve
    per request.
    """
    protector: ResourceProtector = request.app.state.resource_protector
    token = await protector.authenticate(request, _ANY_SCOPE)
    body: dict[str, Any] = {
        "type": "client",
        "sub": token.subject,
        "client_id": token.client_id,
        "scope": format_scope(token.scopes),
    }
    if not token.is_client_token:  # a client token needs no database session at all
        runtime: Runtime = request.app.state.runtime
        user = await token_user(runtime.stores.users, token)
        if user is not None:
            body.update(type="user", email=user.email, is_admin=user.is_admin)
    return JsonBody(body)


# Called without FastAPI's dependency solving (``RequestRoute``); ``Me`` still documents the body.
routes.add_api_route(
    "/me",
    me,
    methods=["GET"],
    response_model=Me,
    response_model_exclude_none=True,
    responses={**_UNAUTHORIZED},
    # The bearer requirement, documented without a dependency (Swagger UI's Authorize applies to it).
    openapi_extra={"security": [{OAUTH2_SCHEME.scheme_name: []}]},
    route_class_override=RequestRoute,
)


@routes.get("/notes", responses={**_UNAUTHORIZED})
async def list_notes(session: SessionDep, token: ReadTokenDep) -> NoteList:
    """List the caller's notes (scope ``read``)."""
    found = await notes.list_notes(session, owner=token.subject)
    return NoteList(notes=[_out(note) for note in found])


@routes.post(
    "/notes",
    status_code=status.HTTP_201_CREATED,
    responses={**_UNAUTHORIZED},
)
async def create_note(
    payload: NoteIn,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    token: WriteTokenDep,
) -> NoteOut:
    """Create a note owned by the caller (scope ``write``)."""
    note = await notes.create_note(
        session,
        owner=token.subject,
        title=payload.title,
        body=payload.body,
        clock=runtime.clock,
    )
    await session.commit()
    response.headers["Location"] = f"/api/v1/notes/{note.id}"
    return _out(note)


@routes.get(
    "/notes/{note_id}",
    response_model=NoteOut,
    responses={**_UNAUTHORIZED, 404: {"description": "No such note"}},
)
async def get_note(
    note_id: NoteId, session: SessionDep, token: ReadTokenDep
) -> NoteOut | JSONResponse:
    """Return one of the caller's notes (scope ``read``)."""
    note = await notes.get_note(session, owner=token.subject, note_id=note_id)
    return _out(note) if note is not None else _not_found()


@routes.delete(
    "/notes/{note_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_UNAUTHORIZED, 404: {"description": "No such note"}},
)
async def delete_note(
    note_id: NoteId, session: SessionDep, token: WriteTokenDep
) -> Response:
    """Delete one of the caller's notes (scope ``write``)."""
    if not await notes.delete_note(session, owner=token.subject, note_id=note_id):
        return _not_found()
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
