"""Client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2.1; RFC 8414 ``none`` for public clients).

``client_secret_basic`` and ``client_secret_post`` are accepted for confidential clients, ``none`` only for
public clients and only where the grant allows public clients. Secrets are compared in constant time against
their stored SHA-256 digest; an unknown client still pays for one digest comparison so timing does not reveal
which client ids exist. Clients may come from ``oauth.client_cache`` (no database read per request); a secret
that does not match a cached registration is checked again against a fresh read, so a rotation never locks out
the new secret.
"""

from typing import Literal

from oauth_service.crypto.tokens import token_hash, verify_token_hash
from oauth_service.oauth.errors import InvalidClientError
from oauth_service.oauth.models import Client, ClientCredentials
from oauth_service.oauth.storage import ClientStore
from oauth_service.oauth.throttling import Attempt, NoThrottle, Throttle
from oauth_service.observability.logs import audit

# Compared against when the client is unknown or has no secret, to keep timing flat.
_DUMMY_SECRET_HASH = token_hash("no such client: dummy secret for timing")


async def authenticate_client(
    credentials: ClientCredentials,
    clients: ClientStore,
    *,
    allow_public: bool,
    throttle: Throttle | None = None,
    client_ip: str | None = None,
    throttle_kind: Literal["client", "introspection"] = "client",
) -> Client:
    """Return the authenticated client; secret guessing is throttled per client id and per IP (RFC 6749 §10.10).

    Raises:
        InvalidClientError: unknown client, wrong secret, a confidential client without a secret, or a public
            client where the grant needs an authenticated one (401 with a Basic challenge when Basic was used);
            ``ThrottledClientError`` (429) while the client id or the IP is locked, even for the right secret.

    ``throttle_kind="introspection"`` counts failures per client id and IP apart from the token endpoint's
    (``oauth.throttling``): a resource server with a wrong secret then locks only itself.
    """
    if credentials.client_secret is None or not credentials.client_id:
        return await _authenticate(credentials, clients, allow_public=allow_public)
    throttle = throttle or NoThrottle()
    attempt = Attempt(throttle_kind, credentials.client_id, client_ip)
    await throttle.check(attempt)
    try:
        client = await _authenticate(credentials, clients, allow_public=allow_public)
    except InvalidClientError:
        await throttle.failed(attempt)
        audit(
            "client_auth.failed",
            attempted_client_id=credentials.client_id,
            method=credentials.method,
        )
        raise
    await throttle.succeeded(attempt)
    return client


async def _authenticate(
    credentials: ClientCredentials, clients: ClientStore, *, allow_public: bool
) -> Client:
    if not credentials.client_id:
        raise _failure(credentials)
    client = await clients.get(credentials.client_id)
    secret = credentials.client_secret
    if client is None:
        verify_token_hash(secret or "", _DUMMY_SECRET_HASH)
        raise _failure(credentials)
    if client.is_public:
        # A public client holds no secret: presenting one, or using it where the grant needs a confidential
        # client (client_credentials), is a failed authentication. An *empty* secret only names the client:
        # Swagger UI and other libraries send ``Basic base64(client_id:)`` for public clients.
        if secret or not allow_public:
            raise _failure(credentials)
        return client
    if credentials.method == "none" or secret is None:
        raise _failure(credentials)
    if not verify_token_hash(secret, client.secret_hash or _DUMMY_SECRET_HASH):
        # A cached registration may predate a secret rotation: only a fresh read may refuse the secret.
        client = await clients.reload(credentials.client_id)
        if client is None or client.is_public:
            raise _failure(credentials)
        if not verify_token_hash(secret, client.secret_hash or _DUMMY_SECRET_HASH):
            raise _failure(credentials)
    if client.secret_hash is None:
        raise _failure(credentials)
    return client


def _failure(credentials: ClientCredentials) -> InvalidClientError:
    """The failed authentication's error (built only on failure: most checks succeed)."""
    return InvalidClientError(used_basic=credentials.method == "client_secret_basic")
