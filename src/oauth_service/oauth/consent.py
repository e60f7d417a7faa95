"""What an authorization request needs next: login, consent, or a response (RFC 6749 §4.1.1, §3.3).

``prompt`` and its errors follow OpenID Connect Core §3.1.2.1 and §3.1.2.6 (``login_required``,
``consent_required``).

A pure decision over values the pages gathered: the validated request, the signed-in user (if any), when they
signed in, and the scopes they granted this client before. ``prompt=none`` never yields a page.
"""

from datetime import datetime
from enum import Enum

from oauth_service.oauth.authorization import AuthorizationRequest
from oauth_service.oauth.errors import (
    ConsentRequiredError,
    InvalidScopeError,
    LoginRequiredError,
)
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.scopes import ADMIN_SCOPE


class NextStep(Enum):
    """Where the browser goes next."""

    LOGIN = "login"
    CONSENT = "consent"
    RESPOND = "respond"


def needs_login(
    request: AuthorizationRequest,
    user: User | None,
    auth_time: datetime | None,
    requested_at: datetime,
) -> bool:
    """Whether the user must (re-)authenticate: nobody signed in, or ``prompt=login`` not yet honoured."""
    if user is None or not user.is_active or auth_time is None:
        return True
    return "login" in request.prompt and auth_time < requested_at


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
        LoginRequiredError: ``prompt=none`` and nobody is signed in.
        InvalidScopeError: ``admin`` requested for a non-administrator.
        ConsentRequiredError: ``prompt=none`` and consent is needed.
    """
    if user is None or needs_login(request, user, auth_time, requested_at):
        if "none" in request.prompt:
            raise LoginRequiredError(
                "The user is not signed in.", redirect=request.error_redirect()
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
