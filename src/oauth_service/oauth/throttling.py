"""Brute-force throttling of credential checks (RFC 6749 §2.3.1, §4.3.2, §10.10; RFC 9700 §4.16).

Three places check a secret an attacker could guess: the password grant, the login form and client
authentication. Each asks a ``Throttle`` before checking (``check``), reports the outcome (``failed`` /
``succeeded``), and so never needs to know how failures are counted or where (``oauth_service.runtime.limits_throttle``
counts them with the ``limits`` library, in Redis when configured so every replica sees the same counts).

Policy: failures are counted per account (an email, or a client id) and per client IP. When an account reaches
its limit it is locked for the lockout period, and so is an IP that reaches its (higher) limit: while locked,
every attempt is refused *before* the secret is checked, so a correct password is refused too. A success resets
the account's counter, not the IP's (one known password must not buy an attacker fresh guesses elsewhere).

Introspection callers (resource servers) are counted apart (kind ``introspection``): per client id *and* client
IP, not per client id alone. A resource server deployed with a wrong secret retries on every request of its own
callers; counted per client id, it would lock that client at the token endpoint and at every other instance of
the API. Keyed on (client id, IP), it locks only itself, and the per-IP count (shared with every other kind)
still bounds guessing from one address. The price: guesses spread over many addresses are not stopped by the
per-client lock at introspection. Client secrets are 256 random bits, so no number of guesses finds one; the
lock bounds the work, it is not what keeps the secret.

The same throttle rate-limits how many authorization requests one IP may start (``admit_authorization``):
each writes a row, so this bounds how fast one address can fill the table (answer: 429
``temporarily_unavailable``, RFC 6749 §4.1.2.1, on a page).

Answer while locked: the error the endpoint would give for bad credentials, with HTTP 429 and ``Retry-After``
(``invalid_grant`` for the password grant, ``invalid_client`` for client authentication): RFC 6749 §5.2 has no
throttling code for the token endpoint, and 429 (RFC 6585 §4) tells well-behaved clients to back off.
"""

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from oauth_service.oauth.emails import canonical_email
from oauth_service.oauth.errors import (
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
    TemporarilyUnavailableError,
)

AttemptKind = Literal["password", "login", "client", "introspection"]

# Kinds whose account is a client id (the others name a user by email).
CLIENT_KINDS: frozenset[AttemptKind] = frozenset({"client", "introspection"})

LOCKED_DESCRIPTION = "Too many failed attempts; retry later."


@dataclass(frozen=True, slots=True)
class Attempt:
    """One credential check: who is targeted (``account``) and from where (``ip``).

    The account is an email or a client id; it is only ever stored hashed (see ``account_key``).
    """

    kind: AttemptKind
    account: str
    ip: str | None = None

    @property
    def account_key(self) -> str:
        """A stable, opaque key for the account: users and clients live in separate namespaces.

        Introspection attempts are keyed on the client id and the IP together (see the module docstring).
        Emails take the form the user lookup compares (``canonical_email``), so ``Alice@``, ``alice@`` and
        either padded with whitespace share one counter, as they share one user; the password grant and the
        login form share it too, so switching interfaces buys no extra guesses.
        """
        if self.kind == "introspection":
            # One counter per (client id, IP): a misconfigured resource server locks only itself.
            namespace, account = "introspection", f"{self.account}\x00{self.ip or ''}"
        elif self.kind == "client":
            namespace, account = "client", self.account
        else:
            namespace, account = "user", canonical_email(self.account)
        digest = hashlib.sha256(f"{namespace}\x00{account}".encode()).hexdigest()
        return f"{namespace}:{digest[:32]}"


class ThrottledGrantError(InvalidGrantError):
    """``invalid_grant`` with 429 and ``Retry-After``: the account or IP is locked (password grant, login)."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(LOCKED_DESCRIPTION)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        """Tell the caller when to retry (RFC 6585 §4)."""
        return {"Retry-After": str(self.retry_after)}


class ThrottledClientError(InvalidClientError):
    """``invalid_client`` with 429 and ``Retry-After``: the client id or IP is locked.

    No ``WWW-Authenticate`` challenge: retrying with other credentials now would not help.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(LOCKED_DESCRIPTION)
        self.retry_after = max(1, int(retry_after))

    @property
    def http_status(self) -> int:
        """Always 429, whatever authentication method was tried."""
        return 429

    def headers(self) -> dict[str, str]:
        """Tell the caller when to retry (RFC 6585 §4)."""
        return {"Retry-After": str(self.retry_after)}


class ThrottledAuthorizationError(TemporarilyUnavailableError):
    """``temporarily_unavailable`` with 429 and ``Retry-After``: one IP started too many authorization requests.

    Every validated ``GET /oauth/authorize`` writes a row (a pending request, or a code): the per-IP rate bounds
    how fast one address can fill the table. Shown as a page, never redirected: the client did nothing wrong.
    """

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many sign-in requests from this network. Wait a minute and try again."
        )
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        """Tell the caller when to retry (RFC 6585 §4)."""
        return {"Retry-After": str(self.retry_after)}


def throttled_error(kind: AttemptKind, retry_after: int) -> OAuthError:
    """The error an endpoint answers while ``kind`` attempts are locked."""
    if kind in CLIENT_KINDS:
        return ThrottledClientError(retry_after)
    return ThrottledGrantError(retry_after)


class Throttle(Protocol):
    """Counts failed credential checks and refuses attempts while an account or IP is locked."""

    async def check(self, attempt: Attempt) -> None:
        """Raise ``ThrottledGrantError``/``ThrottledClientError`` if the account or the IP is locked."""
        ...

    async def failed(self, attempt: Attempt) -> None:
        """Count a failure against the account and the IP; lock whichever reached its limit."""
        ...

    async def succeeded(self, attempt: Attempt) -> None:
        """Reset the account's failure count."""
        ...

    async def admit_authorization(self, ip: str | None) -> None:
        """Count one authorization request from ``ip``; raise ``ThrottledAuthorizationError`` past its rate."""
        ...

    async def aclose(self) -> None:
        """Release connections (called once at shutdown)."""
        ...


class NoThrottle:
    """A throttle that never refuses: the default for unit tests of the strategies."""

    async def check(self, attempt: Attempt) -> None:
        """Never locked."""

    async def failed(self, attempt: Attempt) -> None:
        """Nothing is counted."""

    async def succeeded(self, attempt: Attempt) -> None:
        """Nothing to reset."""

    async def admit_authorization(self, ip: str | None) -> None:
        """Always admitted."""

    async def aclose(self) -> None:
        """Nothing to release."""
