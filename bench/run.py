"""``make bench``: the whole benchmark in one command (issue 7).

Recreates the ``oauth_bench`` Postgres database, migrates and seeds it, starts ``oauth-service serve --workers N``
and the bare FastAPI baseline (``bench.baseline_app``) on the same uvicorn options, drives every scenario with
wrk at each concurrency level (baselines measured before and after, in the same run), then measures the cost of
growth (stored refresh tokens, registered clients) on two more databases, ``oauth_bench_small`` and
``oauth_bench_large``, side by side (``bench.growth``). Writes JSON to ``bench/results/`` and prints the table.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import report, seed, servers
from bench.growth import growth
from bench.loadgen import Result, run_wrk
from bench.probe import HealthProbe
from bench.scenarios import Pools, Scenario, baselines, service
from oauth_service.crypto.passwords import TRIM_DELAY_SECONDS, PasswordHasher
from oauth_service.settings import Settings, load_settings

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``BENCH_*`` variables in the Makefile map onto them)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    p.add_argument("--connections", default="16,64", help="comma-separated levels")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument(
        "--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    p.add_argument("--database", default="oauth_bench")
    p.add_argument("--port", type=int, default=8210)
    p.add_argument("--baseline-port", type=int, default=8310)
    p.add_argument(
        "--pool-rate", type=int, default=3000, help="tokens seeded per second of run"
    )
    p.add_argument(
        "--access-tokens", type=int, default=4000, help="distinct JWTs presented"
    )
    p.add_argument("--growth", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--growth-refresh", type=int, default=1_000_000)
    p.add_argument("--growth-clients", type=int, default=100_000)
    p.add_argument(
        "--growth-rounds",
        type=_positive,
        default=4,
        help="rounds of paired runs of the small and the large state (bench/growth.py)",
    )
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--only", default="", help="comma-separated scenario names (profiling)"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the service (repeatable), e.g. OAUTH_DB_POOL_SIZE=20",
    )
    p.add_argument(
        "--smoke", action="store_true", help="1 s runs at c=4, no growth (CI)"
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.connections, args.growth = 1.0, "4", False
        args.pool_rate, args.access_tokens = 2000, 50
    args.levels = [int(c) for c in args.connections.split(",")]
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def service_env(args: argparse.Namespace) -> dict[str, str]:
    """Environment of the service (and of migrate/seed): the benchmark database, issuer and log level."""
    base = args.admin_dsn.rsplit("/", 1)[0]
    return {
        "DATABASE_URL": f"{base}/{args.database}",
        "OAUTH_ISSUER": f"http://127.0.0.1:{args.port}",
        "LOG_LEVEL": args.log_level,
        **dict(item.split("=", 1) for item in args.env),
    }


def argon2_verify_seconds(settings: Settings, rounds: int = 15) -> float:
    """Median time of one argon2id verify with the configured parameters (measured while idle)."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    stored = hasher.hash_sync(seed.PASSWORD)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher._verify_sync(stored, seed.PASSWORD)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def argon2_bound_rps(settings: Settings) -> float:
    """The password grant's bound: CPUs / one verify's time, measured now (the server idle)."""
    return (os.cpu_count() or 1) / argon2_verify_seconds(settings)


# Verifies of bare argon2 on every CPU just before and just after the password scenario (about 2 s each).
AROUND_ROUNDS = 200


def argon2_parallel_rps(settings: Settings, threads: int, rounds: int = 40) -> float:
    """Verifies per second of bare argon2 on ``threads`` threads (no server): the memory-bound practical ceiling.

    On a VM whose cores share their last-level cache (with each other and with other tenants), two 19 MiB
    hashes at once run slower than one: this ceiling sits below ``CPUs / t`` by that contention alone.
    """
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    stored = hasher.hash_sync(seed.PASSWORD)
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(
            pool.map(
                lambda _: hasher._verify_sync(stored, seed.PASSWORD), range(rounds)
            )
        )
        return rounds / (time.perf_counter() - start)


async def seed_pools(
    args: argparse.Namespace, settings: Settings, seeded: seed.Seeded, work: Path
) -> dict[int, Pools]:
    """One set of pools per concurrency level (single-use tokens are never shared between runs)."""
    dsn = seed.pg_dsn(settings)
    per_run = int(args.pool_rate * args.duration) + 500
    keys = await seed.load_keys(settings)
    tokens = work / "access_tokens.txt"
    jwts = seed.access_tokens(settings, keys, seeded, args.access_tokens, users=False)
    tokens.write_text("".join(t + "\n" for t in jwts))
    passwords = work / "passwords.txt"
    passwords.write_text(
        "".join(
            f"grant_type=password&username={email}&password={seed.PASSWORD}&scope=read\n"
            for email in seeded.user_emails
        )
    )
    userinfo = work / "userinfo_tokens.txt"
    # A quarter as many: each distinct token verified stays in the verified-token cache (about 2.7 KB), and
    # 4,000 more of them put the workers at 150-152 MiB where the earlier rounds' scenarios held 135.
    user_jwts = seed.access_tokens(
        settings,
        keys,
        seeded,
        max(1, args.access_tokens // 4),
        users=True,
        scope=seed.USERINFO_SCOPE,
    )
    userinfo.write_text("".join(t + "\n" for t in user_jwts))
    pools: dict[int, Pools] = {}
    for level in args.levels:
        refresh, codes = work / f"refresh_c{level}.txt", work / f"codes_c{level}.txt"
        await seed.refresh_pool(dsn, seeded, per_run, refresh)
        await seed.code_pool(dsn, seeded, per_run, codes)
        openid = work / f"codes_openid_c{level}.txt"
        await seed.code_pool(dsn, seeded, per_run, openid, openid=True)
        # The plain redemption's runs just before and just after the openid one: a pool each.
        before = work / f"codes_before_openid_c{level}.txt"
        after = work / f"codes_after_openid_c{level}.txt"
        for path in (before, after):
            await seed.code_pool(dsn, seeded, per_run, path)
        pools[level] = Pools(
            refresh, codes, passwords, tokens, openid, (before, after), userinfo
        )
    return pools


def measure(
    scenario: Scenario, base_url: str, args: argparse.Namespace, level: int
) -> tuple[Result, dict[str, float] | None]:
    """Run one scenario; the password scenario also probes ``/healthz`` meanwhile."""

    def run() -> Result:
        return run_wrk(
            base_url,
            scenario.request,
            connections=level,
            duration=args.duration,
            threads=args.threads,
        )

    if scenario.name != "password":
        return run(), None
    with HealthProbe(base_url) as probe:
        result = run()
    health = {
        "p50_ms": probe.percentile(0.5),
        "p99_ms": probe.percentile(0.99),
        "samples": float(len(probe.latencies_ms)),
        "failures": float(probe.failures),
    }
    return result, health


def measure_service(
    scenario: Scenario,
    svc: servers.Server,
    args: argparse.Namespace,
    level: int,
    settings: Settings,
) -> dict[str, Any]:
    """One service scenario as a report row, measured on an idle server and left idle.

    The work wrk left queued is drained before the memory reading and the next run. The password
    scenario's argon2 bound is measured just before and just after it, like the baselines, and the mean
    is its reference; so is bare argon2 on every CPU, the practical ceiling the report compares it with too.
    """
    hashes = scenario.compare_to == "argon2"
    cores = os.cpu_count() or 1
    bound_before = argon2_bound_rps(settings) if hashes else 0
    rounds = 20 if args.smoke else AROUND_ROUNDS
    bare_before = argon2_parallel_rps(settings, cores, rounds) if hashes else 0
    result, health = measure(scenario, svc.base_url, args, level)
    drain = svc.wait_idle()
    if hashes:
        # A worker keeps argon2's freed buffer until no hash has run for TRIM_DELAY_SECONDS (a lone login
        # would otherwise fault it in again): memory "after the runs" is read once it has been given back.
        time.sleep(TRIM_DELAY_SECONDS + 0.5)
    row = report.scenario_row(scenario, level, result, health)
    row["worker_rss_mb_after"] = svc.worker_rss_mb()
    row["drain_s"] = drain
    if hashes:
        row["argon2_bound_rps"] = [bound_before, argon2_bound_rps(settings)]
        row["argon2_parallel_rps"] = [
            bare_before,
            argon2_parallel_rps(settings, cores, rounds),
        ]
    return row


def run_levels(
    args: argparse.Namespace,
    svc: servers.Server,
    base: servers.Server,
    seeded: seed.Seeded,
    pools: dict[int, Pools],
    settings: Settings,
) -> list[dict[str, Any]]:
    """Every scenario at every level (``run_level``)."""
    rows: list[dict[str, Any]] = []
    for level in args.levels:
        scenarios = service(seeded.cc_basic, pools[level])
        rows.extend(run_level(args, svc, base, scenarios, level, settings))
    return rows


def run_level(
    args: argparse.Namespace,
    svc: servers.Server,
    base: servers.Server,
    scenarios: list[Scenario],
    level: int,
    settings: Settings,
) -> list[dict[str, Any]]:
    """One level's scenarios, each between two runs of its reference; the baseline rows first.

    The machine's speed drifts (other tenants of the host): one baseline run before and one after a whole
    level were up to a third apart here. A scenario is compared with the runs of its reference just before
    and just after it; the run after one scenario is the run before the next one compared with the same
    reference, when nothing else ran in between. A reference may be another service scenario (the plain
    code redemption for the openid one): its runs around the scenario are extra runs, each on a fresh pool
    of the scenario's ``reference_pools`` when single-use, recorded in the scenario's row, not as rows.
    """
    wanted = set(filter(None, args.only.split(",")))
    reference = {s.name: s for s in baselines()}
    runs: dict[str, list[Result]] = {name: [] for name in reference}
    by_name = {s.name: s for s in scenarios}
    # What ran last on either server: a reference run is reused only if nothing ran after it.
    latest = ""

    def measured(name: str, row: dict[str, Any]) -> dict[str, Any]:
        nonlocal latest
        latest = name
        return row

    def baseline(name: str, reuse_latest: bool) -> dict[str, Any]:
        if not (reuse_latest and latest == name):
            runs[name].append(measure(reference[name], base.base_url, args, level)[0])
        return measured(name, asdict(runs[name][-1]))

    def service_reference(s: Scenario, run: int) -> dict[str, Any]:
        plain = by_name[s.compare_to or ""]
        if plain.single_use:
            if run >= len(s.reference_pools):
                raise ValueError(
                    f"{s.name}: no fresh pool for run {run} of {plain.name}"
                )
            pool = s.reference_pools[run]
            plain = replace(plain, request=replace(plain.request, pool=pool))
        return measured(plain.name, measure_service(plain, svc, args, level, settings))

    own = []
    for s in scenarios:
        if wanted and s.name not in wanted:
            continue
        name = s.compare_to or ""
        if name not in reference and name not in by_name:  # argon2, or no reference
            own.append(measured(s.name, measure_service(s, svc, args, level, settings)))
            continue
        if name in reference:
            before = baseline(name, reuse_latest=True)
            row = measured(s.name, measure_service(s, svc, args, level, settings))
            after = baseline(name, reuse_latest=False)
        else:
            before = service_reference(s, 0)
            row = measured(s.name, measure_service(s, svc, args, level, settings))
            after = service_reference(s, 1)
            # Kept whole: their errors count too (``report.clean``).
            row["reference_runs"] = [before, after]
            # A reference run that presented a code twice is no fair reference either.
            row["pool_exhausted"] |= before["pool_exhausted"] or after["pool_exhausted"]
        row["reference_runs_rps"] = [before["rps"], after["rps"]]
        row["reference_runs_p99_ms"] = [before["p99_ms"], after["p99_ms"]]
        own.append(row)
    baseline_rows = [
        report.baseline_row(name, level, results)
        for name, results in runs.items()
        if results
    ]
    return baseline_rows + own


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, run, measure; return the results document."""
    env = service_env(args)
    # The servers get ``env``; this process builds the same settings without touching its own environment.
    settings = load_settings(
        database_url=env["DATABASE_URL"], issuer=env["OAUTH_ISSUER"]
    )
    load = os.getloadavg()
    if load[0] > 1.0:
        print(
            f"warning: load average {load[0]:.2f}: other work shares the CPUs; ratios stay comparable"
        )
    argon2_s = argon2_verify_seconds(settings)
    cores = os.cpu_count() or 1
    argon2_parallel = argon2_parallel_rps(settings, cores)
    work = Path(tempfile.mkdtemp(prefix="oauth-bench-"))
    await seed.recreate_database(args.admin_dsn, args.database)
    servers.migrate(env)
    seeded = await seed.seed_registrations(settings)
    pools = await seed_pools(args, settings, seeded, work)
    svc = servers.oauth_service(args.port, args.workers, env, work)
    base = servers.baseline(args.baseline_port, args.workers, env, work)
    try:
        rows = run_levels(args, svc, base, seeded, pools, settings)
        rss = svc.worker_rss_mb()
        arenas = svc.worker_environ("MALLOC_ARENA_MAX")
    finally:
        svc.stop()
        base.stop()
    doc: dict[str, Any] = {
        "machine": report.machine(load),
        "settings": {
            "workers": args.workers,
            "duration_s": args.duration,
            "levels": args.levels,
            "wrk_threads": args.threads,
            "signing_alg": settings.signing_alg,
            "argon2": [
                settings.argon2_time_cost,
                settings.argon2_memory_cost,
                settings.argon2_parallelism,
            ],
            "client_cache_ttl": settings.client_cache_ttl,
            "revocation_cache_ttl": settings.revocation_cache_ttl,
        },
        "argon2_verify_ms": argon2_s * 1000,
        "argon2_bound_rps": cores / argon2_s,
        "argon2_parallel_rps": argon2_parallel,
        "rows": rows,
        "worker_rss_mb": rss,
        "worker_malloc_arena_max": arenas,
        "logs": str(work),
    }
    report.judge(doc)
    if args.growth:
        try:
            doc["growth"] = await growth(args, env, work)
        except (
            Exception
        ) as error:  # the main results stand; the report says what failed
            doc["growth_error"] = f"{type(error).__name__}: {error}"
    return doc


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit status 1 when a run saw non-2xx answers or socket errors."""
    args = parse_args(argv)
    doc = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.write_text(
        json.dumps(doc, indent=2)
    )  # first: a report that fails to render loses nothing
    print(report.render(doc))
    print(f"results: {path}")
    return 0 if report.clean(doc) else 1


if __name__ == "__main__":
    raise SystemExit(main())
