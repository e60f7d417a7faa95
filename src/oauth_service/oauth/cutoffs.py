"""Subject cut-offs: every access token of a user or client issued at or before a moment is refused.

Keycloak calls this "not-before". A jti names one token; a cut-off covers all of a subject's tokens, including
those no table records (client-credentials tokens, password-grant tokens without a refresh token). It is set
when a user is deactivated or changes password, and when a client is deleted (RFC 7009 §2.1 asks that a
revocation take effect at once; RFC 9068 tokens carry no state, so the verifier must hold it).

A token's issue time is read from its jti when that is a UUIDv7 (``oauth.ids``: milliseconds), so a token
minted in the same second just after a password change stays valid; otherwise from ``iat``, whole seconds,
refused when ``iat`` <= the cut-off's second (the safe side). Times come from the issuing process's clock:
replicas' clocks must agree to well under a second, as they must for ``exp`` anyway.
"""

import math
from datetime import timedelta
from typing import Literal

from oauth_service.oauth.access_tokens import AccessToken
from oauth_service.oauth.ids import uuid7_millis

SubjectKind = Literal["user", "client"]
Subject = tuple[SubjectKind, str]
"""``("user", user_id)`` or ``("client", client_id)``."""

# A cut-off must outlive every token it refuses: OAUTH_ACCESS_TOKEN_TTL's upper bound, plus the verifiers' leeway.
CUTOFF_LIFETIME = timedelta(seconds=86_400 + 60)


def subjects_of(access: AccessToken) -> tuple[Subject, ...]:
    """The cut-offs that may refuse ``access``: its client's, and its user's when it has one."""
    if access.is_client_token:
        return (("client", access.client_id),)
    return (("user", access.subject), ("client", access.client_id))


def issued_before(access: AccessToken, cutoff: float) -> bool:
    """Whether ``access`` was issued at or before ``cutoff`` (epoch seconds)."""
    # Float seconds to whole milliseconds; a value a hair below a boundary rounds up (the safe side).
    cutoff_ms = math.floor(cutoff * 1000 + 1e-3)
    millis = uuid7_millis(access.jti)
    if millis is not None:
        return millis <= cutoff_ms
    # No millisecond time: refuse the whole second of the cut-off, and tokens without iat.
    return access.issued_at is None or access.issued_at <= cutoff_ms // 1000
