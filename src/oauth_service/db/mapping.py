"""Row ↔ value-object mapping shared by every SQL store.

Table classes never leave ``oauth_service.db``; these functions turn them into the frozen ``oauth.models``
dataclasses the protocol core works on. Grant-type and scope sets are stored space-separated and sorted
(their RFC 6749 §3.3 wire form).
"""

from collections.abc import Iterable
from typing import cast

from oauth_service.db.tables import ClientRow, UserRow
from oauth_service.oauth.models import AuthMethod, Client, User, UserProfile


def split_set(value: str) -> frozenset[str]:
    """Parse a stored space-separated set."""
    return frozenset(item for item in value.split(" ") if item)


def join_set(values: Iterable[str]) -> str:
    """Render a set in its stored form: space-separated and sorted."""
    return " ".join(sorted(set(values)))


def client_from_row(row: ClientRow) -> Client:
    """Map a ``clients`` row to a ``Client``."""
    return Client(
        client_id=row.client_id,
        name=row.name,
        is_public=row.is_public,
        grant_types=split_set(row.grant_types),
        redirect_uris=tuple(row.redirect_uris),
        scopes=split_set(row.scopes),
        token_endpoint_auth_method=cast(AuthMethod, row.token_endpoint_auth_method),
        is_first_party=row.is_first_party,
        secret_hash=row.secret_hash,
        issued_at=row.created_at,
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        backchannel_logout_uri=row.backchannel_logout_uri,
        backchannel_logout_session_required=row.backchannel_logout_session_required,
    )


def user_from_row(row: UserRow) -> User:
    """Map a ``users`` row to a ``User``."""
    return User(
        id=row.id,
        email=row.email,
        is_active=row.is_active,
        is_admin=row.is_admin,
        password_hash=row.password_hash,
    )


def profile_from_row(row: UserRow) -> UserProfile:
    """Map a ``users`` row to its standard claims (OpenID Connect Core §5.1)."""
    return UserProfile(
        subject=row.id,
        email=row.email,
        email_verified=row.email_verified,
        name=row.name,
        given_name=row.given_name,
        family_name=row.family_name,
        preferred_username=row.preferred_username,
        picture=row.picture,
        locale=row.locale,
        zoneinfo=row.zoneinfo,
        updated_at=row.updated_at,
    )
