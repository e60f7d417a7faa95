"""Cost as work grows: client_credentials and refresh_token on small tables against large ones, paired.

Two databases are prepared: *small* (1,000 filler refresh tokens, 10 clients) and *large* (``--growth-refresh``
and ``--growth-clients``, a million and 100,000 by default), each with its own registrations and pools of
single-use refresh tokens. A service runs on each, side by side, and the two are measured in alternating
runs, round after round: each round runs one state's client_credentials, the other's, the other's
refresh_token, then the first's (the first state alternates from round to round), so the two runs of each
pair are adjacent and neither state always goes first. On a shared host one 8 s run moves by 10-20 % within
a minute, as much as the 10 % the target allows; measured minutes apart, the two states would be compared
through that drift. Paired, the change is each round's large/small ratio, and the verdict is the median over
the rounds.
"""

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import seed, servers
from bench.loadgen import Result, run_wrk
from bench.scenarios import Pools, service
from oauth_service.settings import load_settings

SCENARIOS = ("client_credentials", "refresh_token")
SMALL_REFRESH, SMALL_CLIENTS = 1_000, 10
# Two services run at once here, each keeping the connections its pool opened: with the default pool
# (30 + 10 per worker) the pair could ask for 160, past Postgres' default max_connections of 100, and the
# one under load got "too many clients". Together they get this many, shared by their workers (the same
# pool in both states); a pool size set by ``--env`` or exported in the shell wins.
CONNECTION_BUDGET = 80
_POOL_NAMES = ("OAUTH_DB_POOL_SIZE", "OAUTH_DB_MAX_OVERFLOW")


def growth_pool(workers: int) -> dict[str, str]:
    """Each worker's pool: its share of the budget, four fifths kept open and one fifth overflow."""
    share = max(2, CONNECTION_BUDGET // (2 * workers))
    size = max(1, share * 4 // 5)
    pool = {"OAUTH_DB_POOL_SIZE": str(size), "OAUTH_DB_MAX_OVERFLOW": str(share - size)}
    return {name: value for name, value in pool.items() if name not in os.environ}


async def _prepare(
    args: argparse.Namespace,
    env: dict[str, str],
    name: str,
    sizes: tuple[int, int],
    work: Path,
) -> tuple[dict[str, str], seed.Seeded, list[Path], float]:
    """Create, migrate and seed the ``name`` database: registrations, one refresh pool per round, filler."""
    database = f"{args.database}_{name}"
    state_env = {
        **growth_pool(args.workers),
        **env,
        "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + database,
    }
    settings = load_settings(
        database_url=state_env["DATABASE_URL"], issuer=state_env["OAUTH_ISSUER"]
    )
    await seed.recreate_database(args.admin_dsn, database)
    servers.migrate(state_env)
    seeded = await seed.seed_registrations(settings)
    dsn = seed.pg_dsn(settings)
    per_run = int(args.pool_rate * args.duration) + 500
    pools = [work / f"growth_{name}_{i}.txt" for i in range(args.growth_rounds)]
    for path in pools:
        await seed.refresh_pool(dsn, seeded, per_run, path)
    refresh_rows, clients = sizes
    started = time.monotonic()
    await seed.refresh_filler(dsn, seeded, refresh_rows)
    await seed.client_filler(dsn, clients - 1)  # the benchmark client is the first
    elapsed = time.monotonic() - started
    # Vacuumed and checkpointed now, so autovacuum and a checkpoint of the bulk load do not run during a round.
    await seed.settle(dsn)
    return state_env, seeded, pools, elapsed


async def growth(
    args: argparse.Namespace, env: dict[str, str], work: Path
) -> dict[str, Any]:
    """Measure both states in alternating runs (highest level); the report judges the paired changes."""
    level = max(args.levels)
    sizes = {
        "small": (SMALL_REFRESH, SMALL_CLIENTS),
        "large": (args.growth_refresh, args.growth_clients),
    }
    prepared = {
        name: await _prepare(args, env, name, size, work)
        for name, size in sizes.items()
    }
    # The main runs' servers have stopped: their two ports serve the two states.
    ports = {"small": args.port, "large": args.baseline_port}
    per_run = int(args.pool_rate * args.duration) + 500
    out: dict[str, Any] = {
        "level": level,
        "rounds": args.growth_rounds,
        "bulk_insert_seconds": prepared["large"][3],
        "states": {
            name: {
                "refresh_rows": size[0] + args.growth_rounds * per_run,
                "clients": size[1],
            }
            for name, size in sizes.items()
        },
        "pairs": {scenario: [] for scenario in SCENARIOS},
    }
    running: dict[str, servers.Server] = {}
    try:
        for name in sizes:
            (work / name).mkdir(exist_ok=True)
            running[name] = servers.oauth_service(
                ports[name], args.workers, prepared[name][0], work / name
            )
        for index in range(args.growth_rounds):
            first, second = ("small", "large") if index % 2 == 0 else ("large", "small")
            # Each pair's two runs adjacent: first's cc, second's cc, second's refresh, first's refresh.
            steps = [(first, SCENARIOS[0]), (second, SCENARIOS[0])]
            steps += [(second, SCENARIOS[1]), (first, SCENARIOS[1])]
            results: dict[tuple[str, str], Result] = {}
            for name, scenario in steps:
                _, seeded, pools, _ = prepared[name]
                results[name, scenario] = _run(
                    running[name], seeded, pools[index], scenario, args, level
                )
            for scenario in SCENARIOS:
                out["pairs"][scenario].append(
                    {name: asdict(results[name, scenario]) for name in sizes}
                )
    finally:
        for server in running.values():
            server.stop()
    return out


def _run(
    svc: servers.Server,
    seeded: seed.Seeded,
    pool: Path,
    scenario: str,
    args: argparse.Namespace,
    level: int,
) -> Result:
    """One scenario on one state's service, left drained."""
    # Only client_credentials and refresh_token run here: every pool is the refresh one.
    pools = Pools(pool, pool, pool, pool, pool, (pool, pool), pool)
    picked = {s.name: s for s in service(seeded.cc_basic, pools)}
    result = run_wrk(
        svc.base_url,
        picked[scenario].request,
        connections=level,
        duration=args.duration,
        threads=args.threads,
    )
    svc.wait_idle()
    return result
