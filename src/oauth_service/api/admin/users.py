"""Admin API, users and scopes part: create, list, read, update, deactivate, log out users, reset passwords; scopes.

Same protection and error shapes as the clients part (``common``). Deactivating a user or resetting a password
revokes their refresh tokens and login sessions (``db.admin``), telling the sessions' clients by back-channel
logout, and cuts off the access tokens issued until then:
every protected route and introspection refuse them from the next request on (``oauth.cutoffs``).
"""

from typing import Annotated

from fastapi import Path, Response, status
from fastapi.responses import JSONResponse

from oauth_service.api.admin.common import (
    CursorQuery,
    LimitQuery,
    admin_router,
    bad_request,
    not_found,
)
from oauth_service.api.admin.cursors import CursorKeyDep, decode_cursor, encode_cursor
from oauth_service.api.admin.models import (
    PageOut,
    PasswordIn,
    ScopeIn,
    ScopeOut,
    UserIn,
    UserOut,
    UserPatch,
)
from oauth_service.api.bearer import AdminDep
from oauth_service.api.deps import RuntimeDep, SessionDep
from oauth_service.db import admin, admin_pages
from oauth_service.db.admin import AdminError
from oauth_service.oauth.models import User

UserIdPath = Annotated[str, Path(max_length=36)]

router = admin_router()


async def _out(session: SessionDep, user: User) -> UserOut:
    # The user's row is in the session already (just read or written): its claims cost no query.
    return UserOut.of(user, await admin.user_profile(session, user.id))


@router.get("/users")
async def list_users(
    session: SessionDep,
    key: CursorKeyDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> PageOut[UserOut]:
    """List users by email."""
    after = decode_cursor(key, "users", cursor)
    page = await admin_pages.page_users(session, after=after, limit=limit)
    return PageOut[UserOut](
        items=[await _out(session, u) for u in page.items],
        next_cursor=encode_cursor(key, "users", page.next_after),
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(
    payload: UserIn, response: Response, session: SessionDep, runtime: RuntimeDep
) -> UserOut | JSONResponse:
    """Create a user (emails are unique case-insensitively)."""
    try:
        user = await admin.create_user(
            session,
            email=payload.email,
            password=payload.password,
            is_admin=payload.is_admin,
            profile=payload.claims(),
            hasher=runtime.passwords,
            clock=runtime.clock,
        )
    except AdminError as exc:
        return bad_request(exc)
    out = await _out(session, user)
    await session.commit()
    response.headers["Location"] = f"/admin/users/{user.id}"
    return out


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: UserIdPath, session: SessionDep) -> UserOut | JSONResponse:
    """Return one user."""
    user = await admin_pages.get_user(session, user_id)
    return await _out(session, user) if user is not None else not_found("user")


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: UserIdPath, payload: UserPatch, session: SessionDep, runtime: RuntimeDep
) -> UserOut | JSONResponse:
    """Change a user's standard claims (OpenID Connect Core §5.1); `updated_at` moves to now."""
    if await admin_pages.get_user(session, user_id) is None:
        return not_found("user")
    try:
        user = await admin.update_user(
            session, user_id=user_id, changes=payload.changes(), clock=runtime.clock
        )
    except AdminError as exc:
        return bad_request(exc)
    out = await _out(session, user)
    await session.commit()
    return out


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
async def deactivate_user(
    user_id: UserIdPath, session: SessionDep, runtime: RuntimeDep, caller: AdminDep
) -> UserOut | JSONResponse:
    """Deactivate a user and revoke their refresh tokens and sessions."""
    if await admin_pages.get_user(session, user_id) is None:
        return not_found("user")
    if user_id == caller.id:
        return bad_request(AdminError("you cannot deactivate your own account"))
    user = await admin.deactivate_user(session, user_id=user_id, clock=runtime.clock)
    await session.commit()
    runtime.backchannel_due.set()  # the user's clients are told in the background
    return await _out(session, user)


@router.post("/users/{user_id}/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout_user(
    user_id: UserIdPath, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """End every browser session of the user; their clients get back-channel logouts.

    Refresh tokens granted with `offline_access` are kept; the others of those sessions are revoked.
    """
    if await admin_pages.get_user(session, user_id) is None:
        return not_found("user")
    await admin.logout_user(session, user_id=user_id, clock=runtime.clock)
    await session.commit()
    runtime.backchannel_due.set()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{user_id}/password", response_model=UserOut)
async def reset_password(
    user_id: UserIdPath, payload: PasswordIn, session: SessionDep, runtime: RuntimeDep
) -> UserOut | JSONResponse:
    """Set a new password; the user's refresh tokens and sessions are revoked."""
    if await admin_pages.get_user(session, user_id) is None:
        return not_found("user")
    try:
        user = await admin.set_user_password(
            session,
            user_id=user_id,
            password=payload.password,
            hasher=runtime.passwords,
            clock=runtime.clock,
        )
    except AdminError as exc:
        return bad_request(exc)
    await session.commit()
    runtime.backchannel_due.set()
    return await _out(session, user)


@router.get("/scopes")
async def list_scopes(
    session: SessionDep,
    key: CursorKeyDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> PageOut[ScopeOut]:
    """List scopes by name."""
    after = decode_cursor(key, "scopes", cursor)
    page = await admin_pages.page_scopes(session, after=after, limit=limit)
    return PageOut[ScopeOut](
        items=[ScopeOut.of(s) for s in page.items],
        next_cursor=encode_cursor(key, "scopes", page.next_after),
    )


@router.post("/scopes", status_code=status.HTTP_201_CREATED, response_model=ScopeOut)
async def create_scope(
    payload: ScopeIn, session: SessionDep, runtime: RuntimeDep
) -> ScopeOut | JSONResponse:
    """Create a scope."""
    try:
        scope = await admin.create_scope(
            session, **payload.model_dump(), clock=runtime.clock
        )
    except AdminError as exc:
        return bad_request(exc)
    await session.commit()
    return ScopeOut.of(scope)
