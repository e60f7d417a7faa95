"""The one comparison form of an email address, shared by every place that looks a user up or counts guesses.

The user lookup and the brute-force lockout key must agree on it: if the lockout saw ``" carol@x"`` and
``"carol@x"`` as two accounts while the lookup saw one, each padded spelling would buy fresh guesses at the same
password (and the right password, padded, would get past a lock).
"""


def canonical_email(email: str) -> str:
    """Return ``email`` as users are stored and looked up: surrounding whitespace dropped, lower-cased.

    ``str.strip`` drops all Unicode whitespace (tab, newline, U+2004 and the like), not only spaces.
    """
    return email.strip().lower()
