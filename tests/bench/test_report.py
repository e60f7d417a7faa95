"""How the benchmark report judges a run: each ratio against the reference measured around the scenario."""

from typing import Any

from bench import report


def _row(name: str, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "connections": 64,
        "rps": rps,
        "p50_ms": 5.0,
        "p99_ms": 10.0,
        "non_2xx": 0,
        "socket_errors": 0,
        "pool_exhausted": False,
        "baseline": False,
        "target": 0.5,
        "p99_vs_baseline": None,
        **extra,
    }


def test_a_ratio_uses_the_baseline_runs_and_bare_argon2_around_its_scenario() -> None:
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
                argon2_parallel_rps=[45.0, 55.0],
                drain_s=0.5,
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
    # The password grant is judged against bare argon2 on every CPU measured around it ...
    assert password["reference_rps"] == 50.0
    assert password["ratio"] == 0.9
    assert password["ok"]
    # ... and CPUs / t, measured around it too, is reported as information only.
    assert password["ratio_to_cpu_bound"] == 0.9
    assert "ratio_to_cpu_bound" not in refresh
    text = report.render(
        {
            **doc,
            "machine": {"cpus": 2},
            "settings": {"levels": [64]},
            "argon2_verify_ms": 40.0,
            "argon2_parallel_rps": 50.0,
        }
    )
    assert "the service at 0.90 of it (information)" in text


def test_password_below_09_of_bare_argon2_is_not_met() -> None:
    doc: dict[str, Any] = {
        "rows": [
            _row(
                "password",
                44.0,
                compare_to="argon2",
                target=0.9,
                argon2_bound_rps=[40.0, 40.0],
                argon2_parallel_rps=[50.0, 50.0],
            )
        ],
        "worker_rss_mb": [120.0],
    }
    report.judge(doc)
    assert doc["rows"][0]["ratio"] == 0.88
    assert not doc["rows"][0]["ok"]


def _cc(p99_ms: float) -> dict[str, Any]:
    return _row(
        "client_credentials",
        900.0,
        compare_to="baseline POST",
        target=0.75,
        p99_ms=p99_ms,
        p99_vs_baseline=1.5,
        reference_runs_rps=[1000.0, 1000.0],
        reference_runs_p99_ms=[100.0, 140.0],
    )


def test_client_credentials_p99_is_judged_against_the_baseline_p99_around_it() -> None:
    doc: dict[str, Any] = {"rows": [_cc(180.0), _cc(181.0)], "worker_rss_mb": [120.0]}
    report.judge(doc)
    within, beyond = doc["rows"]
    assert within["p99_limit_ms"] == 180.0  # 1.5 x the mean of 100 and 140
    assert within["ok"]
    assert not beyond["ok"]
    table = report.markdown(doc)
    assert "p99 ≤ 1.5 x baseline p99 (180 ms) | yes |" in table
    assert "p99 ≤ 1.5 x baseline p99 (180 ms) | no |" in table


def _pair(small: float, large: float) -> dict[str, dict[str, float]]:
    return {
        "small": {"rps": small, "non_2xx": 0, "socket_errors": 0},
        "large": {"rps": large, "non_2xx": 0, "socket_errors": 0},
    }


def _growth(*pairs: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "level": 64,
        "rounds": len(pairs),
        "bulk_insert_seconds": 60.0,
        "states": {
            "small": {"refresh_rows": 1_000, "clients": 10},
            "large": {"refresh_rows": 1_000_000, "clients": 100_000},
        },
        "pairs": {"client_credentials": list(pairs), "refresh_token": list(pairs)},
    }


def test_growth_is_judged_by_the_median_of_its_paired_rounds() -> None:
    # The machine slowed down by half between rounds; each round's pair still compares like with like.
    growth = _growth(_pair(1000, 950), _pair(500, 480), _pair(800, 600))
    changes, median = report.growth_change(growth, "refresh_token")
    assert [round(c, 1) for c in changes] == [-5.0, -4.0, -25.0]
    assert round(median, 1) == -5.0  # one disturbed round does not decide the verdict
    lines = report._growth_lines(growth)
    assert "refresh_token        median -5.0% (met)" in "\n".join(lines)


def test_growth_beyond_the_limit_is_not_met() -> None:
    growth = _growth(_pair(1000, 850), _pair(1000, 880), _pair(1000, 900))
    assert report.growth_change(growth, "client_credentials")[1] == -12.0
    assert "median -12.0% (NOT met)" in "\n".join(report._growth_lines(growth))


def test_growth_round_that_served_nothing_counts_as_not_met() -> None:
    growth = _growth(_pair(0, 900), _pair(1000, 990), _pair(0, 0))
    changes, median = report.growth_change(growth, "refresh_token")
    assert (changes, median) == ([-100.0, -1.0, -100.0], -100.0)
    assert "median -100.0% (NOT met)" in "\n".join(report._growth_lines(growth))


def test_growth_with_errors_or_not_measured_makes_the_run_unclean() -> None:
    ok = {"rows": [_row("refresh_token", 500.0)]}
    assert report.clean(ok)
    failing = _pair(1000, 990)
    failing["large"] |= {"non_2xx": 3}
    assert not report.clean({**ok, "growth": _growth(failing)})
    assert report.clean({**ok, "growth": _growth(_pair(1000, 990))})
    assert not report.clean(
        {**ok, "growth_error": "RuntimeError: service did not start"}
    )


def test_baseline_rows_average_their_runs() -> None:
    from bench.loadgen import Result

    runs = [Result(100, 1.0, r, 1.0, 2.0, 0, 0, 0) for r in (100.0, 300.0)]
    row = report.baseline_row("baseline GET (no signing)", 16, runs)
    assert row["rps"] == 200.0
    assert len(row["runs"]) == 2


def _plain_code(rps: float, **extra: Any) -> dict[str, Any]:
    """A run of the plain code redemption measured as another scenario's reference (a row of its own)."""
    return _row(
        "authorization_code", rps, compare_to="baseline POST (form + sign)", **extra
    )


def _openid(rps: float, before: float, after: float) -> dict[str, Any]:
    return _row(
        "authorization_code (openid)",
        rps,
        compare_to="authorization_code",
        target=0.85,
        reference_runs=[_plain_code(before), _plain_code(after)],
        reference_runs_rps=[before, after],
        reference_runs_p99_ms=[10.0, 10.0],
    )


def test_a_scenario_compared_with_another_is_judged_against_its_runs_around_it() -> (
    None
):
    # The plain redemption ran at 800 req/s just before and 700 just after: the reference is their mean.
    doc: dict[str, Any] = {
        "rows": [_openid(637.5, 800.0, 700.0), _openid(630.0, 800.0, 700.0)],
        "worker_rss_mb": [120.0],
    }
    report.judge(doc)
    met, short = doc["rows"]
    assert met["reference_rps"] == 750.0
    assert met["ratio"] == 0.85
    assert met["ok"]
    assert short["ratio"] == 0.84
    assert not short["ok"]
    assert report.markdown(doc).splitlines()[2:] == [
        "| authorization_code (openid) | 64 | 638 | 5.0 | 10.0 | 0"
        " | authorization_code around it (800 / 700 req/s) | 0.85 | ≥ 0.85 | yes |",
        "| authorization_code (openid) | 64 | 630 | 5.0 | 10.0 | 0"
        " | authorization_code around it (800 / 700 req/s) | 0.84 | ≥ 0.85 | no |",
    ]
    text = report.render(
        {
            **doc,
            "machine": {"cpus": 2},
            "settings": {"levels": [64]},
            "argon2_verify_ms": 40.0,
            "argon2_bound_rps": 50.0,
            "argon2_parallel_rps": 50.0,
        }
    )
    assert text.splitlines()[2:4] == [
        "authorization_code (openid)   64      638     5.0    10.0      0   0.85  >=0.85  yes",
        "  authorization_code around           800 / 700 req/s before / after"
        " (the reference; non-2xx and socket errors 0)",
    ]


def test_a_baseline_keeps_its_short_name_in_the_table() -> None:
    doc: dict[str, Any] = {
        "rows": [
            _row(
                "userinfo",
                3000.0,
                compare_to="baseline GET (no signing)",
                reference_runs_rps=[6000.0, 6000.0],
                reference_runs_p99_ms=[5.0, 5.0],
            )
        ],
        "worker_rss_mb": [120.0],
    }
    report.judge(doc)
    assert report.markdown(doc).splitlines()[2] == (
        "| userinfo | 64 | 3000 | 5.0 | 10.0 | 0 | baseline GET | 0.50 | ≥ 0.50 | yes |"
    )


def test_errors_in_a_reference_scenarios_runs_make_the_run_unclean() -> None:
    row = _openid(700.0, 800.0, 700.0)
    assert report.clean({"rows": [row]})
    row["reference_runs"][1]["non_2xx"] = 2
    assert not report.clean({"rows": [row]})
    row["reference_runs"][1] |= {"non_2xx": 0, "socket_errors": 1}
    assert not report.clean({"rows": [row]})
