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
    # A baseline scenario; another service scenario, measured just before and just after this one (its own
    # cost, e.g. an ID token's, apart from the machine's drift); or "argon2": bare argon2 on every CPU, the
    # password grant's practical ceiling.
    compare_to: str | None = None
    target: float | None = None
    single_use: bool = (
        False  # the pool must not wrap around (each token or code is used once)
    )
    # p99 at most this many times the p99 of its baseline runs at the same concurrency, measured around it.
    p99_vs_baseline: float | None = None
    # When ``compare_to`` names a single-use service scenario: one fresh pool for each of its runs around this
    # one, in order (a pool is never shared between runs, nor does it wrap around).
    reference_pools: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class Pools:
    """Files of request bodies or bearer tokens written by the seeding step."""

    refresh: Path
    codes: Path
    passwords: Path
    access_tokens: Path
    openid_codes: Path  # codes of an OpenID Connect sign-in: scope "openid read", a nonce and a sid
    # Plain codes for the runs of ``authorization_code`` just before and just after the openid one.
    code_references: tuple[Path, Path]
    userinfo_tokens: Path  # user access tokens with scope "openid profile email"


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


AUTHORIZATION_CODE = "authorization_code"


def service(basic: str, pools: Pools) -> list[Scenario]:
    """The service's scenarios (issue 7 §3 targets; OpenID Connect's from issue 18)."""
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
            AUTHORIZATION_CODE,
            "service",
            Request("/oauth/token", auth=basic, pool=pools.codes),
            BASELINE_POST,
            0.30,
            single_use=True,
        ),
        # Two signatures per response (access token and ID token): judged against the plain redemption
        # measured just before and just after it, which signs one.
        Scenario(
            "authorization_code (openid)",
            "service",
            Request("/oauth/token", auth=basic, pool=pools.openid_codes),
            AUTHORIZATION_CODE,
            0.85,
            single_use=True,
            reference_pools=pools.code_references,
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
            "userinfo",
            "service",
            Request("/oauth/userinfo", method="GET", bearers=pools.userinfo_tokens),
            BASELINE_GET,
            0.5,
        ),
        Scenario(
            "password",
            "service",
            Request("/oauth/token", auth=basic, pool=pools.passwords),
            "argon2",
            0.9,
        ),
    ]
