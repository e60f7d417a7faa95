"""Settings: defaults from the issue, environment parsing, and one-line errors naming the variable."""

import os

import pytest

from oauth_service.crypto.key_encryption import generate_encryption_key
from oauth_service.settings import Settings, SettingsError, load_settings

GENERATE_KEY = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment: no OAUTH_* or conventional variables leak in from the machine."""
    for name in list(os.environ):
        if name.startswith("OAUTH_") or name in {
            "DATABASE_URL",
            "REDIS_URL",
            "LOG_LEVEL",
            "LOG_FORMAT",
        }:
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_match_the_specification(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./oauth.db"
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.access_token_ttl == 600
    assert settings.refresh_token_ttl == 30 * 86_400
    assert settings.refresh_token_idle_ttl == 14 * 86_400
    assert settings.authorization_code_ttl == 60
    assert settings.signing_alg == "RS256"
    assert settings.cors_origins == []
    assert settings.seed_demo is False
    assert settings.secure_cookies is False
    assert settings.log_format is None  # chosen by whether stderr is a terminal
    assert settings.is_sqlite


def test_environment_variables_are_read(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "postgres://u:p@db:5432/oauth")
    env.setenv("OAUTH_ISSUER", "https://auth.example.com/")
    env.setenv("OAUTH_SIGNING_ALG", "ES256")
    env.setenv("OAUTH_CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    env.setenv("OAUTH_ENABLED_GRANTS", "authorization_code refresh_token")
    env.setenv("OAUTH_SEED_DEMO", "true")
    env.setenv("LOG_LEVEL", "DEBUG")
    env.setenv("LOG_FORMAT", "console")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/oauth"
    assert settings.issuer == "https://auth.example.com"
    assert settings.signing_alg == "ES256"
    assert settings.cors_origins == ["https://a.example.com", "https://b.example.com"]
    assert settings.enabled_grants == ["authorization_code", "refresh_token"]
    assert settings.seed_demo is True
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "console"
    assert settings.secure_cookies is True  # https issuer
    assert not settings.is_sqlite


def test_settings_are_frozen_and_hide_secrets(env: pytest.MonkeyPatch) -> None:
    env.setenv("OAUTH_SECRET_KEY", "super-secret-value-of-32-bytes-xx")
    settings = load_settings()
    assert "super-secret-value" not in repr(settings)
    with pytest.raises(Exception, match="frozen"):
        settings.issuer = "http://other"  # type: ignore[misc]


def test_overrides_win_over_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("OAUTH_ACCESS_TOKEN_TTL", "900")
    assert load_settings(access_token_ttl=120).access_token_ttl == 120


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OAUTH_ISSUER",
            "ftp://auth.example.com",
            "invalid setting OAUTH_ISSUER: must be an absolute http(s) URL",
        ),
        (
            "OAUTH_ISSUER",
            "https://a.example.com/?x=1",
            "invalid setting OAUTH_ISSUER: must have no query or fragment (RFC 8414 §2)",
        ),
        (
            "DATABASE_URL",
            "mysql://db/oauth",
            "invalid setting DATABASE_URL: must be sqlite+aiosqlite:// or postgresql+asyncpg://",
        ),
        (
            "OAUTH_ACCESS_TOKEN_TTL",
            "5",
            "invalid setting OAUTH_ACCESS_TOKEN_TTL: Input should be greater than or equal to 30",
        ),
        (
            "OAUTH_ACCESS_TOKEN_TTL",
            "ten",
            "invalid setting OAUTH_ACCESS_TOKEN_TTL: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "OAUTH_AUTHORIZATION_CODE_TTL",
            "3600",
            "invalid setting OAUTH_AUTHORIZATION_CODE_TTL: Input should be less than or equal to 600",
        ),
        (
            "OAUTH_SIGNING_ALG",
            "HS256",
            "invalid setting OAUTH_SIGNING_ALG: Input should be 'RS256' or 'ES256'",
        ),
        (
            "OAUTH_ENABLED_GRANTS",
            "password teleport",
            "invalid setting OAUTH_ENABLED_GRANTS: unknown grant type(s): teleport",
        ),
        (
            "OAUTH_COOKIE_SECURE",
            "maybe",
            "invalid setting OAUTH_COOKIE_SECURE: Input should be a valid boolean, unable to interpret input",
        ),
        (
            "OAUTH_SECRET_KEY",
            "super-secret-value",
            "invalid setting OAUTH_SECRET_KEY: must be at least 32 bytes (18 given); "
            "generate one with: openssl rand -hex 32",
        ),
        (
            "OAUTH_SECRET_KEY",
            "\u00e9" * 15 + "x",  # 31 bytes in UTF-8, 16 characters
            "invalid setting OAUTH_SECRET_KEY: must be at least 32 bytes (31 given); "
            "generate one with: openssl rand -hex 32",
        ),
        (
            "OAUTH_ARGON2_MEMORY_COST",
            "1024",
            "invalid setting OAUTH_ARGON2_MEMORY_COST: Input should be greater than or equal to 19456",
        ),
        (
            "LOG_LEVEL",
            "LOUD",
            "invalid setting LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            "LOG_FORMAT",
            "text",
            "invalid setting LOG_FORMAT: Input should be 'json' or 'console'",
        ),
        (
            "OAUTH_LOG_FLUSH_INTERVAL",
            "10",
            "invalid setting OAUTH_LOG_FLUSH_INTERVAL: Input should be less than or equal to 5",
        ),
        (
            "OAUTH_PASSWORD_HASH_THREADS",
            "0",
            "invalid setting OAUTH_PASSWORD_HASH_THREADS: Input should be greater than or equal to 1",
        ),
        (
            "REDIS_URL",
            "notaurl",
            "invalid setting REDIS_URL: must be redis://[:password@]host[:port][/db], rediss://... (TLS) "
            "or unix:///path/to/socket",
        ),
        (
            "REDIS_URL",
            "redis://:99999",
            "invalid setting REDIS_URL: the port must be a number from 1 to 65535",
        ),
        (
            "REDIS_URL",
            "redis://cache:6379/zero",
            "invalid setting REDIS_URL: the path must be a database number, such as /0",
        ),
        (
            "REDIS_URL",
            "unix://",
            "invalid setting REDIS_URL: unix:// needs a socket path, such as unix:///run/redis.sock",
        ),
        (
            "OAUTH_KEY_ENCRYPTION_KEY",
            "bogus",
            "invalid setting OAUTH_KEY_ENCRYPTION_KEY: not a Fernet key (32 url-safe base64-encoded bytes; "
            f"several are comma-separated); {GENERATE_KEY}",
        ),
        (
            "OAUTH_KEY_ENCRYPTION_KEY",
            f"{generate_encryption_key()},{generate_encryption_key()[:-2]}",
            "invalid setting OAUTH_KEY_ENCRYPTION_KEY: key 2 of 2 is not a Fernet key (32 url-safe "
            f"base64-encoded bytes; several are comma-separated); {GENERATE_KEY}",
        ),
        (
            "OAUTH_KEY_ENCRYPTION_KEY",
            " , ",
            "invalid setting OAUTH_KEY_ENCRYPTION_KEY: not a Fernet key (32 url-safe base64-encoded bytes; "
            f"several are comma-separated); {GENERATE_KEY}",
        ),
        (
            "OAUTH_REFRESH_TOKEN_IDLE_TTL",
            str(60 * 86_400),
            "invalid settings: OAUTH_REFRESH_TOKEN_IDLE_TTL must not exceed OAUTH_REFRESH_TOKEN_TTL",
        ),
    ],
    ids=[
        "issuer-scheme",
        "issuer-query",
        "database-driver",
        "ttl-too-short",
        "ttl-not-int",
        "code-ttl-too-long",
        "alg",
        "grant",
        "cookie-bool",
        "secret-key-short",
        "secret-key-short-in-bytes",
        "argon2-weak",
        "log-level",
        "log-format",
        "log-flush-interval-too-long",
        "hash-threads-zero",
        "redis-not-a-url",
        "redis-port-out-of-range",
        "redis-database-not-a-number",
        "redis-unix-without-path",
        "key-encryption-key-malformed",
        "key-encryption-key-second-of-two-malformed",
        "key-encryption-key-only-commas",
        "idle-exceeds-absolute",
    ],
)
def test_invalid_setting_raises_one_line_naming_variable(
    env: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_resource_audience_defaults_to_issuer(env: pytest.MonkeyPatch) -> None:
    assert (
        Settings(issuer="https://a.example.com").resource_audience
        == "https://a.example.com"
    )
    assert (
        Settings(issuer="https://a.example.com", audience="api").resource_audience
        == "api"
    )


def test_verified_token_cache_size_is_read_and_bounded(env: pytest.MonkeyPatch) -> None:
    assert load_settings().verified_token_cache_size == 10_000
    env.setenv("OAUTH_VERIFIED_TOKEN_CACHE_SIZE", "0")
    assert load_settings().verified_token_cache_size == 0
    env.setenv("OAUTH_VERIFIED_TOKEN_CACHE_SIZE", "-1")
    with pytest.raises(SettingsError, match="OAUTH_VERIFIED_TOKEN_CACHE_SIZE"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("OAUTH_SECRET_KEY", "k" * 32, "secret_key", "k" * 32),
        ("OAUTH_SECRET_KEY", "\u00e9" * 16, "secret_key", "\u00e9" * 16),
        ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("LOG_LEVEL", " Info ", "log_level", "INFO"),
        ("LOG_LEVEL", "warn", "log_level", "WARNING"),
        ("LOG_LEVEL", "error", "log_level", "ERROR"),
        ("DATABASE_URL", "sqlite:///x.db", "database_url", "sqlite+aiosqlite:///x.db"),
        (
            "DATABASE_URL",
            "sqlite:////var/lib/oauth.db",
            "database_url",
            "sqlite+aiosqlite:////var/lib/oauth.db",
        ),
        (
            "DATABASE_URL",
            "postgresql://u@db/oauth",
            "database_url",
            "postgresql+asyncpg://u@db/oauth",
        ),
        (
            "DATABASE_URL",
            "sqlite+aiosqlite:///x.db",
            "database_url",
            "sqlite+aiosqlite:///x.db",
        ),
        (
            "REDIS_URL",
            "redis://127.0.0.1:6379/0",
            "redis_url",
            "redis://127.0.0.1:6379/0",
        ),
        (
            "REDIS_URL",
            "rediss://:secret@cache.example.com",
            "redis_url",
            "rediss://:secret@cache.example.com",
        ),
        ("REDIS_URL", "redis://localhost", "redis_url", "redis://localhost"),
        (
            "REDIS_URL",
            "unix:///run/redis.sock?db=1",
            "redis_url",
            "unix:///run/redis.sock?db=1",
        ),
        # Compose passes an unset variable as empty: the generated secret key, no Redis, plaintext keys.
        ("OAUTH_SECRET_KEY", "", "secret_key", None),
        ("REDIS_URL", "", "redis_url", None),
        ("OAUTH_KEY_ENCRYPTION_KEY", "", "key_encryption_key", None),
    ],
    ids=[
        "secret-key-32-ascii-bytes",
        "secret-key-32-utf-8-bytes",
        "log-level-lower",
        "log-level-mixed-case-spaces",
        "log-level-warn-alias",
        "log-level-error",
        "database-url-sqlite-relative",
        "database-url-sqlite-absolute",
        "database-url-postgresql",
        "database-url-already-async",
        "redis-url-host-port-db",
        "redis-url-tls-password",
        "redis-url-host-only",
        "redis-url-unix",
        "secret-key-empty-means-unset",
        "redis-url-empty-means-unset",
        "key-encryption-key-empty-means-unset",
    ],
)
def test_setting_as_people_type_it_is_read(
    env: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    """Accepted values, the counterpart of ``test_invalid_setting_raises_one_line_naming_variable``."""
    env.setenv(variable, value)
    assert getattr(load_settings(), attribute) == expected


def test_key_encryption_key_list_of_fernet_keys_is_accepted(
    env: pytest.MonkeyPatch,
) -> None:
    keys = f"{generate_encryption_key()}, {generate_encryption_key()},"
    env.setenv("OAUTH_KEY_ENCRYPTION_KEY", keys)
    assert load_settings().key_encryption_key == keys


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://user:hunter2@db/oauth"),
        ("REDIS_URL", "redis://:hunter2@cache:99999"),
        ("OAUTH_KEY_ENCRYPTION_KEY", "hunter2-not-a-key"),
    ],
    ids=["database-url-credentials", "redis-url-password", "key-encryption-key"],
)
def test_invalid_setting_message_hides_the_value(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
