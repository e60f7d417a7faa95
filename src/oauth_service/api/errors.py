"""One renderer for every ``OAuthError`` plus the handlers that keep bad input from becoming a 500.

* redirecting errors (authorization endpoint, after the redirect_uri was verified) → 302 with ``error``,
  ``error_description``, ``state`` and ``iss`` (RFC 9207) in the query or fragment;
* browser-facing routes (``/oauth/authorize``) → an HTML error page;
* everything else → JSON with ``Cache-Control: no-store``.
"""

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from oauth_service.oauth.caching import NO_STORE
from oauth_service.oauth.errors import (
    InvalidRequestError,
    OAuthError,
    ServerError,
    TemporarilyUnavailableError,
)
from oauth_service.observability.metrics import record_oauth_error

logger = logging.getLogger("oauth_service.errors")

BROWSER_PATHS = ("/oauth/authorize", "/oauth/login", "/oauth/consent", "/oauth/logout")


def redirect_location(exc: OAuthError) -> str:
    """Build the client redirect for an error that carries an ``ErrorRedirect``."""
    assert exc.redirect is not None  # noqa: S101 - callers check first
    params = exc.body()
    if exc.redirect.state is not None:
        params["state"] = exc.redirect.state
    if exc.redirect.issuer is not None:
        params["iss"] = exc.redirect.issuer
    encoded = urlencode(params)
    parts = urlsplit(exc.redirect.uri)
    if exc.redirect.fragment:
        return urlunsplit(
            (parts.scheme, parts.netloc, parts.path, parts.query, encoded)
        )
    query = f"{parts.query}&{encoded}" if parts.query else encoded
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def render_error_page(request: Request, exc: OAuthError) -> Response:
    """Render the HTML error page (authorization endpoint before the redirect_uri is trusted)."""
    from oauth_service.api.pages import render_page

    return render_page(
        request,
        "error.html",
        {"error": exc.error, "description": exc.description or ""},
        status_code=exc.http_status,
        headers=exc.headers(),  # Retry-After of a throttled request
    )


def render_oauth_error(request: Request, exc: OAuthError) -> Response:
    """Render any ``OAuthError``: redirect, HTML page or JSON."""
    record_oauth_error(exc.error)
    if exc.detail:
        logger.info("oauth error %s: %s", exc.error, exc.detail)
    if exc.redirect is not None:
        return RedirectResponse(
            redirect_location(exc), status_code=302, headers=NO_STORE
        )
    if request.url.path.startswith(BROWSER_PATHS):
        return render_error_page(request, exc)
    return JSONResponse(
        exc.body(), status_code=exc.http_status, headers={**NO_STORE, **exc.headers()}
    )


async def _oauth_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for OAuthError only
    return render_oauth_error(request, exc)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    if request.url.path.startswith("/oauth/"):
        body = {
            "error": "invalid_request",
            "error_description": "The request is malformed.",
        }
        return JSONResponse(body, status_code=400, headers=NO_STORE)
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    return JSONResponse(
        {
            "error": "invalid_request",
            "error_description": "The request is malformed.",
            "detail": errors,
        },
        status_code=422,
    )


async def _http_exception_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    descriptions = {
        404: ("not_found", "No such resource."),
        405: ("invalid_request", "Method not allowed."),
        413: ("invalid_request", "The request body is too large."),
    }
    error, description = descriptions.get(
        exc.status_code, ("invalid_request", "The request was refused.")
    )
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=exc.status_code,
        headers={**(exc.headers or {}), **NO_STORE},
    )


async def _database_unavailable_handler(request: Request, exc: Exception) -> Response:
    logger.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    return render_oauth_error(request, TemporarilyUnavailableError())


_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "57014")


async def _database_error_handler(request: Request, exc: Exception) -> Response:
    """Data exceptions (SQLSTATE 22: NUL, over-long value) are bad input; a lost connection is an outage.

    Raised by SQLAlchemy (``DBAPIError``, the driver's error in ``orig``) or, from the Postgres store's
    statements run on asyncpg itself (``db.stores.postgres``), by asyncpg (``PostgresError``).
    """
    if isinstance(exc, DBAPIError):
        invalidated = exc.connection_invalidated
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    else:
        invalidated = False
        sqlstate = str(getattr(exc, "sqlstate", None) or "")
    if invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        # The connection died mid-operation (class 08), the server is out of connections or memory (53),
        # shutting down (57P) or too slow for the statement timeout (57014): an outage, not a bug, and
        # nothing was committed.
        return await _database_unavailable_handler(request, exc)
    if not sqlstate.startswith("22"):
        return await _unexpected_handler(request, exc)
    # Only the SQLSTATE is logged: SQLAlchemy's message embeds the statement's parameters.
    logger.info(
        "refused input the database cannot store on %s %s: SQLSTATE %s",
        request.method,
        request.url.path,
        sqlstate,
    )
    error = InvalidRequestError("The request contains a value the server cannot store.")
    return render_oauth_error(request, error)


async def _unexpected_handler(request: Request, _exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    error = ServerError()
    return JSONResponse(error.body(), status_code=500, headers=NO_STORE)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; Starlette's MRO lookup sends every ``OAuthError`` subclass to one renderer."""
    app.add_exception_handler(OAuthError, _oauth_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(OperationalError, _database_unavailable_handler)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable_handler)
    app.add_exception_handler(InterfaceError, _database_unavailable_handler)
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(asyncpg.PostgresError, _database_error_handler)
    # The connection was closed or broke under a statement run on asyncpg itself.
    app.add_exception_handler(asyncpg.InterfaceError, _database_unavailable_handler)
    app.add_exception_handler(OSError, _database_unavailable_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
