"""Driving wrk (Debian's ``wrk``) with ``bench/wrk/bench.lua`` and reading back its JSON summary line."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).parent / "wrk" / "bench.lua"


@dataclass(frozen=True, slots=True)
class Request:
    """What one scenario sends (see the variables documented in ``bench.lua``)."""

    path: str
    method: str = "POST"
    auth: str | None = None
    body: str | None = None
    pool: Path | None = None
    bearers: Path | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """One wrk run, reduced to the figures the report prints."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    pool_wrapped: int


def wrk_binary() -> str:
    """The wrk executable (``WRK`` overrides)."""
    found = os.environ.get("WRK") or shutil.which("wrk")
    if not found:
        raise SystemExit("wrk not found: apt-get install wrk (or set WRK=/path/to/wrk)")
    return found


def run_wrk(
    base_url: str, request: Request, *, connections: int, duration: float, threads: int
) -> Result:
    """Run wrk for ``duration`` seconds with ``connections`` open connections."""
    threads = max(1, min(threads, connections))
    env = {
        **os.environ,
        "BENCH_METHOD": request.method,
        "BENCH_AUTH": request.auth or "",
        "BENCH_BODY": request.body or "",
        "BENCH_POOL": str(request.pool) if request.pool else "",
        "BENCH_BEARERS": str(request.bearers) if request.bearers else "",
        "BENCH_THREADS": str(threads),
    }
    command = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url + request.path,
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    line = next(
        (ln for ln in completed.stdout.splitlines() if ln.startswith('{"requests"')),
        None,
    )
    if completed.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed: {completed.stderr.strip() or completed.stdout}"
        )
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    return Result(
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        non_2xx=raw["status_errors"],
        socket_errors=raw["connect_errors"]
        + raw["read_errors"]
        + raw["write_errors"]
        + raw["timeouts"],
        pool_wrapped=raw["pool_wrapped"],
    )
