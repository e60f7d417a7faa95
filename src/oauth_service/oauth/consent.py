"""What an authorization request needs next: login, consent, or a response (RFC 6749 §4.1.1, §3.3).

``prompt``, ``max_age``, ``id_token_hint`` and their errors follow OpenID Connect Core §3.1.2.1, §3.1.2.3 and
§3.1.2.6 (``login_required``, ``consent_required``).

A pure decision over values the pages gathered: the validated request, the signed-in user (if any), when they
signed in, and the scopes they granted this client before. ``prompt=none`` never yields a page.
"""

from datetime import datetime, timedelta
from enum import Enum

from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.errors import (
    ConsentRequiredError,
    InvalidScopeError,
    LoginRequiredError,
)
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.scopes import ADMIN_SCOPE

_HINT_MISMATCH = "The signed-in user is not the one id_token_hint names."


class NextStep(Enum):
    """Where the browser goes next."""

    LOGIN = "login"
    CONSENT = "consent"
    RESPOND = "respond"


def login_reason(
    request: AuthorizationRequest,
    user: User | None,
    auth_time: datetime | None,
    requested_at: datetime,
) -> str | None:
    """Why the user must (re-)authenticate, or None when the session will do.

    A sign-in at or after ``requested_at`` answers this request: it honours ``prompt=login`` and ``max_age``, and
    whoever signed in then is the user, whatever ``id_token_hint`` named (the hint is a hint, §3.1.2.1).
    """
    if user is None or not user.is_active or auth_time is None:
        return "The user is not signed in."
    mismatch = request.hint_subject is not None and request.hint_subject != user.id
    if mismatch and "none" in request.prompt:
        return _HINT_MISMATCH  # no sign-in can answer a prompt=none request, however recent
    if auth_time >= requested_at:
        return None
    if "login" in request.prompt:
        return "The user must sign in again."
    if (
        request.max_age is not None
        and auth_time + timedelta(seconds=request.max_age) < requested_at
    ):
        return "The sign-in is older than max_age allows."
    return _HINT_MISMATCH if mismatch else None


def needs_login(
    request: AuthorizationRequest,
    user: User | None,
    auth_time: datetime | None,
    requested_at: datetime,
) -> bool:
    """Whether the user must (re-)authenticate (see ``login_reason``)."""
    return login_reason(request, user, auth_time, requested_at) is not None


def check_user_scope(request: AuthorizationRequest, user: User) -> None:
    """Only administrators may receive the ``admin`` scope (RFC 6749 §3.3: the server may refuse scopes)."""
    if ADMIN_SCOPE in request.scope and not user.is_admin:
        raise InvalidScopeError(
            "The admin scope is reserved for administrators.",
            redirect=request.error_redirect(),
        )


def needs_consent(
    request: AuthorizationRequest, client: Client, remembered: frozenset[str] | None
) -> bool:
    """Whether the consent page must be shown (``prompt=consent``, or scopes not granted before)."""
    if "consent" in request.prompt:
        return True
    if client.is_first_party:
        return False
    return remembered is None or not request.scope <= remembered


def next_step(
    request: AuthorizationRequest,
    client: Client,
    *,
    user: User | None,
    auth_time: datetime | None,
    requested_at: datetime,
    remembered: frozenset[str] | None,
) -> NextStep:
    """Decide the next step; ``prompt=none`` turns a needed page into an error redirect.

    Raises:
        LoginRequiredError: ``prompt=none`` and nobody is signed in, or the session is older than ``max_age``,
            or its user is not the one ``id_token_hint`` names.
        InvalidScopeError: ``admin`` requested for a non-administrator.
        ConsentRequiredError: ``prompt=none`` and consent is needed.
    """
    reason = login_reason(request, user, auth_time, requested_at)
    if user is None or reason is not None:
        if "none" in request.prompt:
            raise LoginRequiredError(
                reason or "The user is not signed in.",
                redirect=request.error_redirect(),
            )
        return NextStep.LOGIN
    check_user_scope(request, user)
    if needs_consent(request, client, remembered):
        if "none" in request.prompt:
            raise ConsentRequiredError(
                "The user has not approved this client.",
                redirect=request.error_redirect(),
            )
        return NextStep.CONSENT
    return NextStep.RESPOND
