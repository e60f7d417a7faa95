"""What may be cached: responses that carry tokens, credentials or errors never are (RFC 6749 §5.1, RFC 6750 §3).

One definition for every route and for the resource-server kit; ``Pragma`` is for HTTP/1.0 caches.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

NO_STORE: Final[Mapping[str, str]] = MappingProxyType(
    {"Cache-Control": "no-store", "Pragma": "no-cache"}
)
