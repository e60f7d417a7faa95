"""Turning wrk results into the rows, ratios and table of the benchmark report."""

import os
import platform
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.loadgen import Result
from bench.scenarios import Scenario

HEALTH_P99_LIMIT_MS = 20.0
RSS_LIMIT_MB = 150.0


def machine(load: tuple[float, float, float]) -> dict[str, Any]:
    """Where the figures come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": list(load),
    }


def baseline_row(name: str, level: int, runs: list[Result]) -> dict[str, Any]:
    """A baseline measured several times at one level (around each scenario); its figures are the means."""
    count = len(runs)
    return {
        "scenario": name,
        "connections": level,
        "rps": sum(r.rps for r in runs) / count,
        "p50_ms": sum(r.p50_ms for r in runs) / count,
        "p99_ms": sum(r.p99_ms for r in runs) / count,
        "non_2xx": sum(r.non_2xx for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "runs": [asdict(r) for r in runs],
        "baseline": True,
    }


def scenario_row(
    scenario: Scenario, level: int, result: Result, health: dict[str, float] | None
) -> dict[str, Any]:
    """A service scenario's row (ratio filled in by ``judge``)."""
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "connections": level,
        **asdict(result),
        "compare_to": scenario.compare_to,
        "target": scenario.target,
        "p99_vs_baseline": scenario.p99_vs_baseline,
        "pool_exhausted": scenario.single_use and result.pool_wrapped > 0,
        "baseline": False,
    }
    if health is not None:
        row["healthz"] = health
    return row


def judge(doc: dict[str, Any]) -> None:
    """Add ``ratio`` and ``ok`` to every service row, and the memory verdict."""
    rows = doc["rows"]
    for row in rows:
        if row["baseline"]:
            continue
        if row["compare_to"] == "argon2":
            # Bare argon2 on every CPU with no server, measured just before and just after the scenario.
            around = row["argon2_parallel_rps"]
            # CPUs / one verify: information only (a shared L3 keeps even bare argon2 below it).
            bound = row["argon2_bound_rps"]
            row["ratio_to_cpu_bound"] = row["rps"] / (sum(bound) / len(bound))
        else:
            # The runs of its reference, a baseline or another service scenario, just before and just after
            # the scenario (``bench.run.run_level``).
            around = row["reference_runs_rps"]
        reference = sum(around) / len(around)
        row["reference_rps"] = reference
        row["ratio"] = row["rps"] / reference if reference else 0.0
        ok = row["ratio"] >= (row["target"] or 0.0) and row["non_2xx"] == 0
        ok = ok and row["socket_errors"] == 0 and not row["pool_exhausted"]
        if row["p99_vs_baseline"] is not None:
            p99s = row["reference_runs_p99_ms"]
            row["p99_limit_ms"] = row["p99_vs_baseline"] * sum(p99s) / len(p99s)
            ok = ok and row["p99_ms"] <= row["p99_limit_ms"]
        if "healthz" in row:
            ok = ok and row["healthz"]["p99_ms"] < HEALTH_P99_LIMIT_MS
        row["ok"] = ok
    doc["rss_ok"] = (
        bool(doc["worker_rss_mb"]) and max(doc["worker_rss_mb"]) < RSS_LIMIT_MB
    )


def clean(doc: dict[str, Any]) -> bool:
    """No non-2xx answers and no socket errors anywhere (targets are reported, not enforced).

    That includes the runs of a service scenario measured as another one's reference, which have no row.
    """
    runs = [run for row in doc["rows"] for run in [row, *row.get("reference_runs", [])]]
    rows_clean = all(r["non_2xx"] == 0 and r["socket_errors"] == 0 for r in runs)
    if "growth_error" in doc:
        return False
    return rows_clean and ("growth" not in doc or growth_clean(doc["growth"]))


# %: the most client_credentials and refresh may lose as the tables grow.
GROWTH_DROP_LIMIT = -10.0
# A round whose small-state run served nothing has no meaningful change: it counts as the worst.
_FAILED_ROUND = -100.0


def growth_change(growth: dict[str, Any], name: str) -> tuple[list[float], float]:
    """Each round's change of ``name`` from the small to the large state, in %, and their median (the verdict).

    The two states are measured in adjacent runs (``bench.growth``), so each round's change compares
    figures taken under the same conditions of a drifting machine. No round at all gives a median of -100 %.
    """
    changes = [
        (pair["large"]["rps"] - pair["small"]["rps"]) / pair["small"]["rps"] * 100
        if pair["small"]["rps"]
        else _FAILED_ROUND
        for pair in growth["pairs"][name]
    ]
    return changes, statistics.median(changes) if changes else _FAILED_ROUND


def growth_clean(growth: dict[str, Any]) -> bool:
    """No non-2xx answers and no socket errors in any growth run."""
    return all(
        run["non_2xx"] == 0 and run["socket_errors"] == 0
        for pairs in growth["pairs"].values()
        for pair in pairs
        for run in pair.values()
    )


def _growth_lines(growth: dict[str, Any]) -> list[str]:
    small, large = growth["states"]["small"], growth["states"]["large"]
    lines = [
        "",
        f"Cost as work grows (c={growth['level']}; {growth['rounds']} alternating rounds; bulk insert took"
        f" {growth['bulk_insert_seconds']:.0f} s): small state {small['refresh_rows']:,} refresh rows,"
        f" {small['clients']:,} clients; large state {large['refresh_rows']:,} rows, {large['clients']:,} clients",
    ]
    for name in ("client_credentials", "refresh_token"):
        pairs = growth["pairs"][name]
        changes, median = growth_change(growth, name)
        rounds = ", ".join(
            f"{p['small']['rps']:.0f} -> {p['large']['rps']:.0f} ({c:+.1f}%)"
            for p, c in zip(pairs, changes, strict=True)
        )
        non_2xx = sum(
            r["non_2xx"] + r["socket_errors"] for p in pairs for r in p.values()
        )
        verdict = "met" if median >= GROWTH_DROP_LIMIT else "NOT met"
        lines.append(
            f"  {name:<20} median {median:+.1f}% ({verdict}); req/s small -> large by round: {rounds};"
            f" non-2xx and socket errors {non_2xx}"
        )
    return lines


def render(doc: dict[str, Any]) -> str:
    """The human-readable table."""
    header = f"{'scenario':<28} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non2xx':>6} {'ratio':>6} {'target':>7}  ok"
    lines = [header, "-" * len(header)]
    for row in doc["rows"]:
        ratio = "" if row["baseline"] else f"{row['ratio']:.2f}"
        target = "" if row["baseline"] else f">={row['target']:.2f}"
        ok = "" if row["baseline"] else ("yes" if row["ok"] else "NO")
        lines.append(
            f"{row['scenario']:<28} {row['connections']:>3} {row['rps']:>8.0f} {row['p50_ms']:>7.1f}"
            f" {row['p99_ms']:>7.1f} {row['non_2xx']:>6} {ratio:>6} {target:>7}  {ok}"
        )
        if "worker_rss_mb_after" in row and row["connections"] == max(
            doc["settings"]["levels"]
        ):
            rss_after = "/".join(f"{mb:.0f}" for mb in row["worker_rss_mb_after"])
            lines[-1] += f"  (RSS {rss_after} MiB)"
        if "healthz" in row:
            lines.append(
                f"{'  /healthz during it':<28} {'':>3} {'':>8} {row['healthz']['p50_ms']:>7.1f}"
                f" {row['healthz']['p99_ms']:>7.1f}  (limit p99 < {HEALTH_P99_LIMIT_MS:.0f} ms)"
            )
        if "reference_runs" in row:
            before, after = row["reference_runs"]
            errors = sum(r["non_2xx"] + r["socket_errors"] for r in (before, after))
            lines.append(
                f"{'  ' + row['compare_to'] + ' around':<28} {'':>3} {before['rps']:>8.0f} /"
                f" {after['rps']:.0f} req/s before / after (the reference; non-2xx and socket errors {errors})"
            )
        if "p99_limit_ms" in row:
            lines.append(
                f"{'  p99 limit':<28} {'':>3} {'':>8} {'':>7} {row['p99_limit_ms']:>7.1f}"
                f"  ({row['p99_vs_baseline']} x the baseline's p99 around it)"
            )
        if "ratio_to_cpu_bound" in row:
            before, after = row["argon2_parallel_rps"]
            lines.append(
                f"{'  bare argon2 before/after':<28} {'':>3} {before:>8.1f} / {after:.1f} verifies/s"
                f" on {doc['machine']['cpus']} threads (the reference; drained in {row['drain_s']:.1f} s)"
            )
            before, after = row["argon2_bound_rps"]
            lines.append(
                f"{'  CPUs / t before/after':<28} {'':>3} {before:>8.1f} / {after:.1f} req/s:"
                f" the service at {row['ratio_to_cpu_bound']:.2f} of it (information)"
            )
    lines.append("")
    lines.append(
        f"argon2id verify: {doc['argon2_verify_ms']:.1f} ms -> bound {doc['argon2_bound_rps']:.0f} req/s on"
        f" {doc['machine']['cpus']} CPUs; bare argon2 on {doc['machine']['cpus']} threads, no server:"
        f" {doc['argon2_parallel_rps']:.0f} verifies/s (the password ratio's reference)"
    )
    rss = ", ".join(f"{mb:.0f}" for mb in doc["worker_rss_mb"])
    lines.append(f"worker RSS after the runs: {rss} MiB (limit {RSS_LIMIT_MB:.0f})")
    if "growth" in doc:
        lines.extend(_growth_lines(doc["growth"]))
    if "growth_error" in doc:
        lines.extend(["", f"Cost as work grows: not measured ({doc['growth_error']})"])
    return "\n".join(lines)


def _compared_with(row: dict[str, Any]) -> str:
    """The reference's name in the table: a baseline's short name, another scenario's whole name."""
    name: str = row["compare_to"]
    if name == "argon2":
        return "bare argon2 on every CPU"
    if "reference_runs" not in row:
        # A baseline: "baseline POST (form + sign)" -> "baseline POST".
        return name.split(" (")[0]
    before, after = row["reference_runs_rps"]
    return f"{name} around it ({before:.0f} / {after:.0f} req/s)"


def markdown(doc: dict[str, Any]) -> str:
    """The README table of one run (``python -m bench.report bench/results/<file>.json``)."""
    lines = [
        "| scenario | c | req/s | p50 ms | p99 ms | non-2xx | compared with | ratio | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for row in doc["rows"]:
        if row["baseline"]:
            lines.append(
                f"| {row['scenario']} | {row['connections']} | {row['rps']:.0f} | {row['p50_ms']:.1f}"
                f" | {row['p99_ms']:.1f} | {row['non_2xx']} | | | | |"
            )
            continue
        against = _compared_with(row)
        extra = ""
        if "p99_limit_ms" in row:
            extra = (
                f", p99 ≤ {row['p99_vs_baseline']} x baseline p99"
                f" ({row['p99_limit_ms']:.0f} ms)"
            )
        if "healthz" in row:
            extra = f", /healthz p99 {row['healthz']['p99_ms']:.1f} ms (< 20)"
        lines.append(
            f"| {row['scenario']} | {row['connections']} | {row['rps']:.0f} | {row['p50_ms']:.1f}"
            f" | {row['p99_ms']:.1f} | {row['non_2xx']} | {against} | {row['ratio']:.2f}"
            f" | ≥ {row['target']:.2f}{extra} | {'yes' if row['ok'] else 'no'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
