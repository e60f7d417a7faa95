"""Admin API, clients part: register, list, read, update, rotate the secret of, and delete clients.

Bodies use RFC 7591 client-metadata names (``client_models``, ``oauth.client_metadata``). Protection, page
parameters and error bodies are ``common``'s. Secrets are returned once, with ``Cache-Control: no-store``
(RFC 6749 §2.3.1, RFC 7591 §3.2.1).
"""

from typing import Annotated, Any

from fastapi import Path, Response, status
from fastapi.responses import JSONResponse

from oauth_service.api.admin.client_models import (
    ClientCreated,
    ClientIn,
    ClientOut,
    ClientPatch,
    ClientSecret,
)
from oauth_service.api.admin.common import (
    CursorQuery,
    LimitQuery,
    admin_router,
    bad_request,
    not_found,
)
from oauth_service.api.admin.cursors import CursorKeyDep, decode_cursor, encode_cursor
from oauth_service.api.admin.models import PageOut
from oauth_service.api.deps import RuntimeDep, SessionDep
from oauth_service.db import admin, admin_pages
from oauth_service.db.admin import AdminError
from oauth_service.oauth.caching import NO_STORE
from oauth_service.oauth.client_metadata import (
    SECRET_NEVER_EXPIRES,
    is_public_method,
    split_scope_field,
)
from oauth_service.oauth.models import Client

ClientIdPath = Annotated[str, Path(max_length=255)]

router = admin_router()


@router.get("/clients")
async def list_clients(
    session: SessionDep,
    key: CursorKeyDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> PageOut[ClientOut]:
    """List clients by ``client_id``."""
    after = decode_cursor(key, "clients", cursor)
    page = await admin_pages.page_clients(session, after=after, limit=limit)
    return PageOut[ClientOut](
        items=[ClientOut.of(c) for c in page.items],
        next_cursor=encode_cursor(key, "clients", page.next_after),
    )


@router.post(
    "/clients",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    response_model_exclude_unset=True,
)
async def create_client(
    payload: ClientIn, response: Response, session: SessionDep, runtime: RuntimeDep
) -> ClientCreated | JSONResponse:
    """Register a client; a confidential client's secret is in this response only."""
    try:
        client, secret = await admin.create_client(
            session,
            name=payload.client_name,
            grant_types=payload.grant_types,
            redirect_uris=payload.redirect_uris,
            scopes=split_scope_field(payload.scope),
            is_public=is_public_method(payload.token_endpoint_auth_method),
            is_first_party=payload.first_party,
            client_id=payload.client_id,
            post_logout_redirect_uris=payload.post_logout_redirect_uris,
            backchannel_logout_uri=payload.backchannel_logout_uri,
            backchannel_logout_session_required=payload.backchannel_logout_session_required,
            clock=runtime.clock,
        )
    except AdminError as exc:
        return bad_request(exc)
    await session.commit()
    response.headers.update(NO_STORE)
    response.headers["Location"] = f"/admin/clients/{client.client_id}"
    # Only the fields set are sent: a public client's response has no secret fields at all.
    issued = (
        {}
        if secret is None
        else {"client_secret": secret, "client_secret_expires_at": SECRET_NEVER_EXPIRES}
    )
    return ClientCreated(**ClientOut.of(client).model_dump(), **issued)


@router.get("/clients/{client_id}", response_model=ClientOut)
async def get_client(
    client_id: ClientIdPath, session: SessionDep
) -> ClientOut | JSONResponse:
    """Return one client."""
    client = await admin_pages.get_client(session, client_id)
    return ClientOut.of(client) if client is not None else not_found("client")


def _changes(payload: ClientPatch, current: Client) -> dict[str, Any]:
    """The ``db.admin.update_client`` arguments a PATCH body asks for.

    Raises:
        AdminError: the body would turn a public client confidential or back (a secret cannot appear or vanish
            under a client id other parties already trust).
    """
    method = payload.token_endpoint_auth_method
    if method is not None and is_public_method(method) != current.is_public:
        raise AdminError(
            "token_endpoint_auth_method cannot change between 'none' (public) and a secret "
            "method (confidential): register a new client"
        )
    # None keeps the stored value (``db.admin.update_client``): omitted and null fields change nothing.
    return {
        "name": payload.client_name,
        "grant_types": payload.grant_types,
        "redirect_uris": payload.redirect_uris,
        "scopes": None if payload.scope is None else split_scope_field(payload.scope),
        "is_first_party": payload.first_party,
        "post_logout_redirect_uris": payload.post_logout_redirect_uris,
        "backchannel_logout_uri": payload.backchannel_logout_uri,
        "backchannel_logout_session_required": payload.backchannel_logout_session_required,
    }


@router.patch("/clients/{client_id}", response_model=ClientOut)
async def update_client(
    client_id: ClientIdPath,
    payload: ClientPatch,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClientOut | JSONResponse:
    """Change a client's name, grant types, redirect URIs, scope or first-party flag."""
    current = await admin_pages.get_client(session, client_id)
    if current is None:
        return not_found("client")
    try:
        client = await admin.update_client(
            session,
            client_id=client_id,
            **_changes(payload, current),
            clock=runtime.clock,
        )
    except AdminError as exc:
        return bad_request(exc)
    await session.commit()
    runtime.client_cache.invalidate(client_id)
    return ClientOut.of(client)


@router.post("/clients/{client_id}/secret", response_model=ClientSecret)
async def rotate_secret(
    client_id: ClientIdPath,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ClientSecret | JSONResponse:
    """Replace a confidential client's secret; the old one stops working at once (its tokens stay valid)."""
    if await admin_pages.get_client(session, client_id) is None:
        return not_found("client")
    try:
        client, secret = await admin.rotate_client_secret(
            session, client_id=client_id, clock=runtime.clock
        )
    except AdminError as exc:
        return bad_request(exc)
    await session.commit()
    runtime.client_cache.invalidate(client_id)
    response.headers.update(NO_STORE)
    return ClientSecret(
        client_id=client.client_id,
        client_secret=secret,
        client_secret_expires_at=SECRET_NEVER_EXPIRES,
    )


@router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(
    client_id: ClientIdPath, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Delete a client with its codes, refresh tokens and consents; its access tokens are refused at once."""
    if await admin_pages.get_client(session, client_id) is None:
        return not_found("client")
    await admin.delete_client(
        session,
        client_id=client_id,
        client_cache_ttl=runtime.settings.client_cache_ttl,
        clock=runtime.clock,
    )
    await session.commit()
    runtime.client_cache.invalidate(client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
