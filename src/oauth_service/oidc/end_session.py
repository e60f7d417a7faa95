"""The rules of an end-session request (OpenID Connect RP-Initiated Logout 1.0 §2, §3).

``validate_logout_request`` checks the parameters before anything ends: an ``id_token_hint`` must be an ID
token we issued (expired ones too, §2), a ``client_id`` sent with it must be among its audiences, and a
``post_logout_redirect_uri`` needs a client (named, or the hint's only audience) that registered exactly that
URI (§3.1): the browser is never sent anywhere else. A valid hint for the signed-in user and session (or when nobody is
signed in) proves the request came from that user's relying party, so it logs out at once; otherwise the user
is asked first (§2, ``proves``). ``logout_hint`` is accepted and ignored: the session is the browser's.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.models import Client
from oauth_service.oauth.storage import ClientStore
from oauth_service.oidc.id_tokens import HintVerifier, IdTokenHint, verify_hint

# The parameters a confirmation form carries back (§2), in this order.
CARRIED_PARAMS = (
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A checked end-session request."""

    hint: IdTokenHint | None
    client: Client | None
    redirect_uri: str | None  # registered for ``client``
    state: str | None
    carried: tuple[tuple[str, str], ...]

    def proves(self, user_id: str | None, sid: str | None) -> bool:
        """Whether the request may end the session ``sid`` of ``user_id`` (None: nobody signed in) without asking.

        The hint must name the user and, when it and the session both carry a ``sid``, this very session: a
        hint from an earlier session of the same user is stale, and the user is asked (§2).
        """
        if user_id is None:
            return True
        if self.hint is None or self.hint.subject != user_id:
            return False
        return self.hint.sid is None or sid is None or self.hint.sid == sid

    def redirect_location(self) -> str | None:
        """Where to send the browser afterwards: the registered URI with ``state`` added (§3), else None."""
        if self.redirect_uri is None:
            return None
        if self.state is None:
            return self.redirect_uri
        parts = urlsplit(self.redirect_uri)
        extra = urlencode({"state": self.state})
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def validate_logout_request(
    params: Mapping[str, str],
    *,
    keys: HintVerifier,
    issuer: str,
    clients: ClientStore,
) -> LogoutRequest:
    """Check an end-session request's parameters.

    Raises:
        InvalidRequestError: a hint we did not issue, a ``client_id`` the hint was not issued to, an unknown
            client, or a ``post_logout_redirect_uri`` without a client or not registered for it.
    """
    raw_hint = params.get("id_token_hint") or None
    client_id = params.get("client_id") or None
    redirect_uri = params.get("post_logout_redirect_uri") or None
    hint = None
    if raw_hint is not None:
        hint = verify_hint(raw_hint, keys, issuer=issuer)
        if hint is None:
            raise InvalidRequestError("id_token_hint is not valid")
        if client_id is not None and client_id not in hint.audiences:
            raise InvalidRequestError("client_id does not match the id_token_hint")
        if client_id is None and len(hint.audiences) == 1:
            client_id = hint.audiences[0]
    client = await clients.get(client_id) if client_id is not None else None
    if client_id is not None and client is None and params.get("client_id"):
        raise InvalidRequestError("client_id is unknown")
    if redirect_uri is not None:
        if client is None:
            raise InvalidRequestError(
                "post_logout_redirect_uri needs client_id or an id_token_hint"
            )
        if redirect_uri not in client.post_logout_redirect_uris:
            raise InvalidRequestError(
                "post_logout_redirect_uri is not registered for this client"
            )
    carried = tuple((name, params[name]) for name in CARRIED_PARAMS if params.get(name))
    return LogoutRequest(
        hint=hint,
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state") or None,
        carried=carried,
    )
