"""What every admin route shares: its protection, the errors it documents, page parameters and error bodies.

Every route needs an access token with the ``admin`` scope whose subject is an active admin user (RFC 6750 §3:
401 without a valid token, 403 ``insufficient_scope`` otherwise). Rejected input is a 422 (malformed body) or a
400 naming the rule that failed; lists are keyset-paginated with signed cursors (``cursors``).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from oauth_service.api.bearer import require_admin
from oauth_service.db.admin import AdminError
from oauth_service.oauth.caching import NO_STORE

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The input breaks a registration rule"},
    401: {"description": "Missing, invalid, expired or revoked token"},
    403: {"description": "The token lacks the admin scope or is not an admin user's"},
    404: {"description": "No such client or user (routes naming one)"},
}
LimitQuery = Annotated[int, Query(ge=1, le=200, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=1024, description="`next_cursor` of the previous page")
]


def admin_router() -> APIRouter:
    """A router under ``/admin`` whose every route demands an admin and documents ``ADMIN_RESPONSES``."""
    return APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(require_admin)],
        responses=ADMIN_RESPONSES,
    )


def bad_request(error: AdminError) -> JSONResponse:
    """Render a rejected administrative input as a 400 naming the rule."""
    body = {"error": "invalid_request", "error_description": str(error)}
    return JSONResponse(body, status_code=400, headers=NO_STORE)


def not_found(what: str) -> JSONResponse:
    """Render a missing item as a 404."""
    body = {"error": "not_found", "error_description": f"No such {what}."}
    return JSONResponse(body, status_code=404, headers=NO_STORE)
