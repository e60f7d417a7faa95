"""How the benchmark report judges a run: each ratio against the reference measured around the scenario."""

from typing import Any

from bench import report


def _row(name: str, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "connections": 64,
        "rps": rps,
        "p99_ms": 10.0,
        "non_2xx": 0,
        "socket_errors": 0,
        "pool_exhausted": False,
        "baseline": False,
        "target": 0.5,
        "p99_limit_ms": None,
        **extra,
    }


def test_a_ratio_uses_the_baseline_runs_and_argon2_bounds_around_its_scenario() -> None:
    doc: dict[str, Any] = {
        "rows": [
            _row(
                "refresh_token",
                300.0,
                compare_to="baseline POST",
                reference_runs_rps=[1000.0, 500.0],
            ),
            _row(
                "password",
                45.0,
                compare_to="argon2",
                argon2_bound_rps=[40.0, 60.0],
                argon2_parallel_rps=[40.0, 50.0],
            ),
        ],
        "worker_rss_mb": [120.0],
        "argon2_bound_rps": 99.0,  # the start-up figure is not the reference
    }
    report.judge(doc)
    refresh, password = doc["rows"]
    assert refresh["reference_rps"] == 750.0
    assert refresh["ratio"] == 0.4
    assert not refresh["ok"]
    assert password["ratio"] == 0.9
    assert password["ok"]
    # Bare argon2 on every CPU, measured around it too, is reported beside the bound, never judged.
    assert password["ratio_to_bare_argon2"] == 1.0
    assert "ratio_to_bare_argon2" not in refresh


def test_growth_is_judged_against_the_baseline_measured_around_each_pass() -> None:
    growth = {
        "small": {"refresh_token": {"rps": 1000.0}, "baseline_rps": 2000.0},
        "large": {"refresh_token": {"rps": 800.0}, "baseline_rps": 1700.0},
    }
    raw, relative = report.growth_change(growth, "refresh_token")
    assert round(raw, 1) == -20.0
    assert round(relative, 1) == -5.9  # 0.5 -> 0.4706 of the baseline


def test_baseline_rows_average_their_runs() -> None:
    from bench.loadgen import Result

    runs = [Result(100, 1.0, r, 1.0, 2.0, 0, 0, 0) for r in (100.0, 300.0)]
    row = report.baseline_row("baseline GET (no signing)", 16, runs)
    assert row["rps"] == 200.0
    assert len(row["runs"]) == 2
