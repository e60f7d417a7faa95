"""Errors of the database layer: rejected administrative input, and log-safe descriptions of database failures.

SQLAlchemy's own error messages embed the statement's parameters (a private key, on an insert into
``signing_keys``; a token hash elsewhere), so background work logs only the driver's first line.
"""

from sqlalchemy.exc import DBAPIError

from oauth_service.oauth.registration import RegistrationError


class AdminError(RegistrationError):
    """Rejected administrative input (``db.admin``): a broken registration rule, or a clash with what is stored.

    ``str(error)`` is one clear line; the admin API answers it in a 400, the CLI prints it.
    """


def describe_error(
    exc: BaseException, *, safe: tuple[type[BaseException], ...] = ()
) -> str:
    """One log-safe line: the class, plus a message only where it is known to carry no secrets.

    Args:
        exc: the failure.
        safe: further exception classes whose message is safe to show (``OSError`` always is).
    """
    name = type(exc).__name__
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip().splitlines() if exc.orig else []
        return f"{name}: {detail[0]}" if detail else name
    if isinstance(exc, (OSError, *safe)):
        return f"{name}: {exc}"
    return name
