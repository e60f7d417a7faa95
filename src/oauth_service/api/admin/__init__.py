"""Admin API under ``/admin``: clients, users and scopes, for an active admin user's token with the ``admin`` scope.

``router`` carries every route. Routes: ``clients``, ``users`` (users and scopes); what they share (protection,
documented errors, page parameters, error bodies): ``common``; bodies: ``models``, ``client_models``,
``client_fields``; signed page cursors: ``cursors``.
"""

from fastapi import APIRouter

from oauth_service.api.admin import clients, users

__all__ = ["router"]

router = APIRouter()
router.include_router(clients.router)
router.include_router(users.router)
