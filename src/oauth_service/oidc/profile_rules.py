"""Rules for the standard claims an administrator sets on a user (OpenID Connect Core §5.1).

Shared by the CLI and the admin API through ``db.admin``: both send the fields they were given, by claim name, and
get them back checked and normalized, or a ``ProfileError`` whose ``str`` is one clear line. An empty string
clears a claim (stored as NULL, so UserInfo omits it, §5.3.2). Lengths are the ``users`` table's.
"""

import functools
import re
import zoneinfo
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "PROFILE_FIELDS",
    "ProfileError",
    "ProfileValue",
    "check_profile",
]

ProfileValue = str | bool | None

# Claim name -> longest value the ``users`` column holds (``picture`` is TEXT: a URL bound like a browser's).
TEXT_FIELDS: Mapping[str, int] = {
    "name": 255,
    "given_name": 255,
    "family_name": 255,
    "preferred_username": 255,
    "picture": 2048,
    "locale": 35,
    "zoneinfo": 64,
}
PROFILE_FIELDS: tuple[str, ...] = (*TEXT_FIELDS, "email_verified")

# BCP 47 (RFC 5646) tags as §5.1 describes them: a language, an optional script, an optional region
# ("en", "en-US", "zh-Hant-TW", "es-419"). Underscores ("en_US") are refused.
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ProfileError(ValueError):
    """A claim value that breaks a rule; ``str(error)`` is one clear line."""


@functools.cache
def _time_zones() -> frozenset[str]:
    # Reading the tz database takes milliseconds: once per process, and only when a zoneinfo is set.
    return frozenset(zoneinfo.available_timezones())


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a broken bracketed host: "http://[::1", "https://[zz]/"
        return False
    return parts.scheme in ("http", "https") and bool(host) and " " not in value


def _check_text(name: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None  # cleared
    if len(value) > TEXT_FIELDS[name]:
        raise ProfileError(f"{name} must be at most {TEXT_FIELDS[name]} characters")
    if _CONTROL.search(value):
        raise ProfileError(f"{name} must not contain control characters")
    if name == "picture":
        if not _is_web_url(value):
            raise ProfileError(f"picture must be an http or https URL, not {value!r}")
    elif name == "locale" and not _LOCALE.fullmatch(value):
        raise ProfileError(
            f"locale must be a BCP 47 language tag such as 'en' or 'en-US', not {value!r}"
        )
    elif name == "zoneinfo" and value not in _time_zones():
        raise ProfileError(
            f"zoneinfo must be a time zone name such as 'Europe/Paris', not {value!r}"
        )
    return value


def check_profile(changes: Mapping[str, ProfileValue]) -> dict[str, ProfileValue]:
    """Return ``changes`` checked and normalized (trimmed; an empty string or None clears the claim).

    Raises:
        ProfileError: an unknown claim, a value of the wrong type, or one that breaks its claim's rule.
    """
    checked: dict[str, ProfileValue] = {}
    for name, value in changes.items():
        if name == "email_verified":
            if not isinstance(value, bool):
                raise ProfileError("email_verified must be true or false")
            checked[name] = value
        elif name in TEXT_FIELDS:
            if value is not None and not isinstance(value, str):
                raise ProfileError(f"{name} must be a string")
            checked[name] = None if value is None else _check_text(name, value)
        else:
            raise ProfileError(f"{name!r} is not a profile claim")
    return checked
