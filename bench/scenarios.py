"""The benchmark scenarios: what each sends, which baseline it is compared with, and its target ratio."""

from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import Request

BASELINE_POST = "baseline POST (form + sign)"
BASELINE_GET = "baseline GET (no signing)"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One load: its request, the server it targets, and how its result is judged."""

    name: str
    server: str  # "service" or "baseline"
    request: Request
    # A baseline scenario, or "argon2": bare argon2 on every CPU, the password grant's practical ceiling.
    compare_to: str | None = None
    target: float | None = None
    single_use: bool = (
        False  # the pool must not wrap around (each token or code is used once)
    )
    # p99 at most this many times the p99 of its baseline runs at the same concurrency, measured around it.
    p99_vs_baseline: float | None = None


@dataclass(frozen=True, slots=True)
class Pools:
    """Files of request bodies or bearer tokens written by the seeding step."""

    refresh: Path
    codes: Path
    passwords: Path
    access_tokens: Path


def baselines() -> list[Scenario]:
    """The two ceilings measured in the same run."""
    return [
        Scenario(
            BASELINE_POST,
            "baseline",
            Request("/token", body="grant_type=client_credentials&scope=read"),
        ),
        Scenario(BASELINE_GET, "baseline", Request("/get", method="GET")),
    ]


def service(basic: str, pools: Pools) -> list[Scenario]:
    """The service's scenarios (issue 7 §3 targets)."""
    return [
        Scenario(
            "client_credentials",
            "service",
            Request(
                "/oauth/token",
                auth=basic,
                body="grant_type=client_credentials&scope=read",
            ),
            BASELINE_POST,
            0.75,
            p99_vs_baseline=1.5,
        ),
        Scenario(
            "refresh_token",
            "service",
            Request("/oauth/token", auth=basic, pool=pools.refresh),
            BASELINE_POST,
            0.30,
            single_use=True,
        ),
        Scenario(
            "authorization_code",
            "service",
            Request("/oauth/token", auth=basic, pool=pools.codes),
            BASELINE_POST,
            0.30,
            single_use=True,
        ),
        Scenario(
            "introspection",
            "service",
            Request(
                "/oauth/introspect",
                auth=basic,
                body="token_type_hint=access_token&token=",
                bearers=pools.access_tokens,
            ),
            BASELINE_GET,
            0.5,
        ),
        Scenario(
            "/api/v1/me (JWT)",
            "service",
            Request("/api/v1/me", method="GET", bearers=pools.access_tokens),
            BASELINE_GET,
            0.6,
        ),
        Scenario(
            "password",
            "service",
            Request("/oauth/token", auth=basic, pool=pools.passwords),
            "argon2",
            0.9,
        ),
    ]
