"""What a grant's ``validate`` hands to its ``issue``: the decided grant, and the one state change it carries.

``Grant`` is decided when ``validate`` returns: the client, the subject, the scope. Its ``change`` is the state
change issuing it performs: a password ``Rehash``, or none. A single-use credential is different: the code or
refresh token is spent and read in one atomic step of the store (``CodeRedemption``, ``RefreshRotation``), so
its ``validate`` checks the request and names the step, and ``issue`` learns the subject and scope from it.
Each strategy declares which of these it hands over (``grants.GrantStrategy``); none carries another's fields.
"""

from dataclasses import dataclass, field
from datetime import datetime

from oauth_service.oauth.models import Client


@dataclass(frozen=True, slots=True)
class Rehash:
    """Store ``new_hash`` for ``user_id`` if the stored hash is still ``replacing`` (argon2 parameters changed)."""

    user_id: str
    new_hash: str = field(repr=False)
    replacing: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Grant:
    """A decided grant: ``issue`` mints for it and performs ``change``."""

    client: Client
    # None: the client itself (client_credentials).
    subject: str | None
    scope: frozenset[str]
    # Issue a refresh token starting a new family with the access token.
    with_refresh: bool = False
    auth_time: datetime | None = None
    # When ``validate`` began reading the state it relies on: the access token's jti carries this moment, so
    # a cut-off committed while the grant ran (a password change during the hash) refuses it (``oauth.cutoffs``).
    as_of: datetime | None = None
    change: Rehash | None = None


@dataclass(frozen=True, slots=True)
class CodeRedemption:
    """Redeem an authorization code (RFC 6749 §4.1.3): what the request presented, checked by the store's step."""

    client: Client
    code_hash: str = field(repr=False)
    redirect_uri: str | None
    code_verifier: str | None = field(repr=False)
    with_refresh: bool
    as_of: datetime


@dataclass(frozen=True, slots=True)
class RefreshRotation:
    """Rotate a refresh token (RFC 6749 §6): the presented token and the scope asked of it (None: all)."""

    client: Client
    token_hash: str = field(repr=False)
    scope: frozenset[str] | None
    as_of: datetime
