"""Standard claims (OpenID Connect Core §5.1) and which scope releases which (§5.4).

A pure mapping over a ``UserProfile``: UserInfo and the implicit ``id_token`` response use it alike, so the two
can never disagree about what a scope releases. ``sub`` is always the user's id (public subject type).
"""

from collections.abc import Iterable, Mapping
from typing import Any

# The value object lives in the core (``oauth.models``): the ``UserStore`` protocol returns it.
from oauth_service.oauth.models import UserProfile

__all__ = [
    "CLAIMS_SUPPORTED",
    "OFFLINE_ACCESS_SCOPE",
    "OPENID_SCOPE",
    "SCOPE_CLAIMS",
    "UserProfile",
    "released_claims",
]

OPENID_SCOPE = "openid"
OFFLINE_ACCESS_SCOPE = "offline_access"

# OpenID Connect Core §5.4: the claims each scope value requests. ``address`` and ``phone`` are not kept.
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "preferred_username",
        "picture",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
}
# What discovery lists as ``claims_supported``: the ID token's own claims and every standard claim above.
# ``azp`` is absent: an ID token's ``aud`` is only ever its client, so it is never needed (Core §2).
ID_TOKEN_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "amr",
    "sid",
)
CLAIMS_SUPPORTED: tuple[str, ...] = ID_TOKEN_CLAIMS + tuple(
    claim for names in SCOPE_CLAIMS.values() for claim in names
)


def released_claims(profile: UserProfile, scope: Iterable[str]) -> dict[str, Any]:
    """``sub`` and the claims ``scope`` releases that are set (§5.3.2: unset claims are omitted)."""
    claims: dict[str, Any] = {"sub": profile.subject}
    for value in scope:
        for name in SCOPE_CLAIMS.get(value, ()):
            claim = profile.claim(name)
            if claim is not None and claim != "":
                claims[name] = claim
    return claims
