"""Service configuration, read from the environment once by ``load_settings()``.

Variables are ``OAUTH_*`` plus the conventional ``DATABASE_URL``, ``REDIS_URL`` and ``LOG_LEVEL``.
Nothing here runs at import time; ``create_app(settings)`` takes an explicit instance.
"""

from ipaddress import ip_network
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from oauth_service.crypto.key_encryption import GENERATE_COMMAND, is_fernet_key

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./oauth.db"
MIN_SECRET_KEY_BYTES = 32


class SettingsError(Exception):
    """Invalid configuration; the message is one line fit for an operator."""


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    return value


class Settings(BaseSettings):
    """Every tunable of the service, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="OAUTH_", frozen=True, extra="ignore")

    issuer: str = "http://127.0.0.1:8000"
    audience: str | None = None
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "OAUTH_DATABASE_URL"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "OAUTH_REDIS_URL")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "OAUTH_LOG_LEVEL")
    )
    # Seconds INFO log lines may wait to be written in one batch (warnings and errors never wait); 0: at once.
    log_flush_interval: float = Field(default=0.05, ge=0, le=5)
    # JSON lines, or short lines for a person; unset: console when stderr is a terminal (``log_console``).
    log_format: Literal["json", "console"] | None = Field(
        default=None, validation_alias=AliasChoices("LOG_FORMAT", "OAUTH_LOG_FORMAT")
    )

    # Lifetimes, in seconds.
    access_token_ttl: int = Field(default=600, ge=30, le=86_400)
    refresh_token_ttl: int = Field(default=30 * 86_400, ge=60)
    refresh_token_idle_ttl: int = Field(default=14 * 86_400, ge=60)
    authorization_code_ttl: int = Field(default=60, ge=10, le=600)
    login_session_ttl: int = Field(default=8 * 3600, ge=60)
    refresh_grace_seconds: int = Field(default=0, ge=0, le=60)
    id_token_ttl: int = Field(default=3600, ge=30, le=86_400)
    # Back-channel logout (OpenID Connect Back-Channel Logout 1.0): per-attempt timeout (seconds) and how many
    # attempts a logout token gets before it is given up (with an audit event and a metric).
    backchannel_logout_timeout: float = Field(default=5.0, gt=0, le=60)
    backchannel_logout_max_attempts: int = Field(default=5, ge=1, le=20)
    # Outbound requests (back-channel logout, later metadata documents) go only to public addresses; this
    # lets them reach loopback and private networks too (tests, or a receiver inside the cluster).
    outbound_allow_private_networks: bool = False

    signing_alg: Literal["RS256", "ES256"] = "RS256"
    key_encryption_key: str | None = Field(default=None, repr=False)
    # Key rotation (seconds): a new key is published this long before it signs (longer than any JWKS cache).
    key_publish_delay: int = Field(default=600, ge=0)
    key_rotation_interval: int = Field(default=0, ge=0)  # automatic rotation; 0 = off
    key_reload_interval: float = Field(default=30.0, gt=0)
    # Housekeeping: purge expired rows every N seconds (0 = off), deleting this many rows per transaction.
    purge_interval: int = Field(default=3600, ge=0)
    purge_batch_size: int = Field(default=1000, ge=1)
    secret_key: str | None = Field(default=None, repr=False)

    allow_plain_pkce: bool = False
    enabled_grants: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
        ]
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cookie_secure: bool | None = None
    seed_demo: bool = False
    # /docs (Swagger UI) and its built-in public client, registered at start-up with <issuer>/docs/oauth2-redirect.
    docs_enabled: bool = True
    docs_client_id: str = Field(default="docs", pattern=r"^[A-Za-z0-9._~-]{1,255}$")

    # Password hashing: argon2id, at least OWASP's minimum (m >= 19 MiB, t >= 2).
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_memory_cost: int = Field(default=19_456, ge=19_456)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes run at once per process (the rest queue). Unset: the CPU count, or with ``serve --workers N`` the
    # CPU count divided among the workers, so the machine never runs more 19 MiB hashes than it has cores.
    password_hash_threads: int | None = Field(default=None, ge=1)

    # Database pool (Postgres).
    # Sized above the concurrency a worker sees: connections opened beyond the pool are closed on return.
    db_pool_size: int = Field(default=30, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)
    # Test each pooled connection before use? It costs three round trips (BEGIN, ping, ROLLBACK) per checkout;
    # without it a connection the database dropped fails one request, and the pool is then renewed.
    db_pool_pre_ping: bool = False

    # Caches that keep the database off the hottest paths; each bound is a staleness bound.
    client_cache_ttl: float = Field(default=5.0, ge=0)
    # Users' standard claims as UserInfo answers them (``oauth.profile_cache``); 0 reads them on every call.
    user_cache_ttl: float = Field(default=5.0, ge=0)
    revocation_cache_ttl: float = Field(default=2.0, ge=0)
    # Access tokens whose signature was verified, by their exact string (no staleness: expiry and revocation
    # are still checked on every use); 0 disables it.
    verified_token_cache_size: int = Field(default=10_000, ge=0)

    # Throttling of credential guessing.
    max_failed_logins: int = Field(default=5, ge=1)
    lockout_seconds: int = Field(default=300, ge=1)
    max_failed_logins_per_ip: int = Field(default=50, ge=1)
    # Authorization requests one IP may start per minute: each writes a row (pending request or code).
    max_authorize_requests_per_ip: int = Field(default=120, ge=1)
    # Namespace of the throttle's keys in Redis (replicas of one deployment share it).
    throttle_key_prefix: str = Field(
        default="oauth-service", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )

    max_body_bytes: int = Field(default=65_536, ge=1024)
    metrics_enabled: bool = True
    # FastAPI's native OpenTelemetry (spans, metrics, logs through the global providers). Off by default: the
    # service exports Prometheus metrics and JSON logs, and FastAPI looks up the global providers on every
    # request even when none is configured (docs/performance.md).
    opentelemetry: bool = False
    # Serve /metrics on its own port (off the public listener) instead of on the main app.
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    request_id_header: str = Field(
        default="X-Request-ID", pattern=r"^[A-Za-z0-9-]{1,64}$"
    )

    @field_validator("enabled_grants", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {entry!r}") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str | None) -> str | None:
        # It keys every cookie, CSRF token and cursor MAC (HMAC-SHA256): below 32 bytes it is weaker than the
        # hash, and a short operator-chosen phrase can be guessed offline from one signed cookie.
        if not value:
            return None  # unset (compose passes an unset variable as empty): the generated key is used
        size = len(value.encode("utf-8"))
        if size < MIN_SECRET_KEY_BYTES:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_BYTES} bytes ({size} given); "
                "generate one with: openssl rand -hex 32"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        # People type ``debug`` or ``warn``; ``WARN`` is the logging module's own alias of ``WARNING``.
        if isinstance(value, str):
            value = value.strip().upper()
            return "WARNING" if value == "WARN" else value
        return value

    @field_validator("key_encryption_key")
    @classmethod
    def _key_encryption_key(cls, value: str | None) -> str | None:
        # Checked before anything starts: a typo would otherwise pass until a key is sealed or opened.
        if not value:
            return None  # unset (compose passes an unset variable as empty): keys are stored in plaintext
        keys = [part.strip() for part in value.split(",") if part.strip()]
        bad = [
            position for position, key in enumerate(keys, 1) if not is_fernet_key(key)
        ]
        if keys and not bad:
            return value
        # A position, never the value: the message is printed and logged.
        which = f"key {bad[0]} of {len(keys)} is " if len(keys) > 1 else ""
        raise ValueError(
            f"{which}not a Fernet key (32 url-safe base64-encoded bytes; several are comma-separated); "
            f"generate one with: {GENERATE_COMMAND}"
        )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # redis-py would only fail at the first login, inside a request; messages never repeat the URL (it may
        # carry a password).
        if not value:
            return None  # unset (compose passes an unset variable as empty): counters in process memory
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme not in {"redis", "rediss", "unix"} or "://" not in value:
            raise ValueError(
                "must be redis://[:password@]host[:port][/db], rediss://... (TLS) or unix:///path/to/socket"
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("the port must be a number from 1 to 65535")
        if scheme == "unix":
            if not parts.path.strip("/"):
                raise ValueError(
                    "unix:// needs a socket path, such as unix:///run/redis.sock"
                )
        elif (database := parts.path.strip("/")) and not database.isdigit():
            raise ValueError("the path must be a database number, such as /0")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must have no query or fragment (RFC 8414 §2)")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        elif value.startswith("sqlite://"):
            value = "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not (
            value.startswith("sqlite+aiosqlite://")
            or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError("must be sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("enabled_grants")
    @classmethod
    def _grants(cls, value: list[str]) -> list[str]:
        known = {
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
        }
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown grant type(s): {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Settings":
        if self.refresh_token_idle_ttl > self.refresh_token_ttl:
            raise ValueError(
                "OAUTH_REFRESH_TOKEN_IDLE_TTL must not exceed OAUTH_REFRESH_TOKEN_TTL"
            )
        if 0 < self.key_rotation_interval <= self.key_publish_delay:
            raise ValueError(
                "OAUTH_KEY_ROTATION_INTERVAL must exceed OAUTH_KEY_PUBLISH_DELAY"
            )
        return self

    @property
    def signed_token_ttl(self) -> int:
        """The longest a JWT this server signs stays valid: how long a superseded key must stay published."""
        return max(self.access_token_ttl, self.id_token_ttl)

    @property
    def resource_audience(self) -> str:
        """The ``aud`` of access tokens: the configured audience, else the issuer."""
        return self.audience or self.issuer

    @property
    def secure_cookies(self) -> bool:
        """Cookies are Secure when configured so, or by default when the issuer is https."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.issuer.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        """Whether the embedded database is in use."""
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides).

    Raises:
        SettingsError: one line naming the offending variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a cross-field rule; its message names the variables
            raise SettingsError(f"invalid settings: {message}") from None
        loc = str(first["loc"][0])
        env = loc if loc.isupper() else f"OAUTH_{loc.upper()}"
        if loc in {"database_url", "redis_url", "log_level", "log_format"}:
            env = loc.upper()  # the conventional names, without the prefix
        raise SettingsError(f"invalid setting {env}: {message}") from None
