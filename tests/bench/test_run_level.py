"""The order of a level's runs: each scenario between two runs of its reference, on fresh single-use pools.

wrk is replaced by a recorder, so this checks what runs in which order and what each ratio is built from.
"""

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench import loadgen, report, run, scenarios, servers
from oauth_service.settings import Settings


class Recorder:
    """Stands in for ``measure`` and ``measure_service``: every run gets the next req/s, 1, 2, 3 ..."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def _result(
        self, scenario: scenarios.Scenario, *, wrapped: int = 0
    ) -> loadgen.Result:
        self.runs.append(
            scenario.name
            + (f" <{scenario.request.pool.name}>" if scenario.request.pool else "")
        )
        return loadgen.Result(10, 1.0, float(len(self.runs)), 1.0, 2.0, 0, 0, wrapped)

    def measure(
        self,
        scenario: scenarios.Scenario,
        _url: str,
        _args: argparse.Namespace,
        _level: int,
    ) -> tuple[loadgen.Result, None]:
        return self._result(scenario), None

    def measure_service(
        self,
        scenario: scenarios.Scenario,
        _svc: servers.Server,
        _args: argparse.Namespace,
        level: int,
        _settings: Settings,
    ) -> dict[str, Any]:
        pool = scenario.request.pool
        wrapped = 1 if pool is not None and pool.name == "wraps.txt" else 0
        return report.scenario_row(
            scenario, level, self._result(scenario, wrapped=wrapped), None
        )


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(run, "measure", recorder.measure)
    monkeypatch.setattr(run, "measure_service", recorder.measure_service)
    return recorder


def _pools(after: str = "after.txt") -> scenarios.Pools:
    return scenarios.Pools(
        Path("refresh.txt"),
        Path("codes.txt"),
        Path("passwords.txt"),
        Path("tokens.txt"),
        Path("openid.txt"),
        (Path("before.txt"), Path(after)),
        Path("userinfo.txt"),
    )


def _level(
    only: str = "", pools: scenarios.Pools | None = None
) -> list[dict[str, Any]]:
    args = argparse.Namespace(only=only)
    server = cast(servers.Server, SimpleNamespace(base_url="http://127.0.0.1:1"))
    loads = scenarios.service("Basic eA==", pools or _pools())
    return run.run_level(args, server, server, loads, 64, cast(Settings, None))


def test_each_scenario_runs_between_two_runs_of_its_reference(
    recorder: Recorder,
) -> None:
    rows = _level()
    assert recorder.runs == [
        "baseline POST (form + sign)",
        "client_credentials",
        "baseline POST (form + sign)",
        "refresh_token <refresh.txt>",
        "baseline POST (form + sign)",
        "authorization_code <codes.txt>",
        "baseline POST (form + sign)",
        # The openid redemption between two plain ones, each on a pool of its own.
        "authorization_code <before.txt>",
        "authorization_code (openid) <openid.txt>",
        "authorization_code <after.txt>",
        "baseline GET (no signing)",
        "introspection",
        "baseline GET (no signing)",
        "/api/v1/me (JWT)",
        "baseline GET (no signing)",
        "userinfo",
        "baseline GET (no signing)",
        "password <passwords.txt>",
    ]
    by_name = {row["scenario"]: row for row in rows}
    # The runs' req/s are their positions above.
    assert by_name["authorization_code"]["reference_runs_rps"] == [5.0, 7.0]
    openid = by_name["authorization_code (openid)"]
    assert openid["reference_runs_rps"] == [8.0, 10.0]
    assert [r["scenario"] for r in openid["reference_runs"]] == [
        "authorization_code",
        "authorization_code",
    ]
    assert not openid["pool_exhausted"]
    assert by_name["introspection"]["reference_runs_rps"] == [11.0, 13.0]
    assert by_name["userinfo"]["reference_runs_rps"] == [15.0, 17.0]
    assert "reference_runs_rps" not in by_name["password"]
    # Baseline rows first, then the scenarios; the plain runs around openid are not rows of their own.
    assert [row["scenario"] for row in rows] == [
        "baseline POST (form + sign)",
        "baseline GET (no signing)",
        "client_credentials",
        "refresh_token",
        "authorization_code",
        "authorization_code (openid)",
        "introspection",
        "/api/v1/me (JWT)",
        "userinfo",
        "password",
    ]


def test_only_the_openid_scenario_still_runs_its_reference_around_it(
    recorder: Recorder,
) -> None:
    rows = _level(only="authorization_code (openid)")
    assert recorder.runs == [
        "authorization_code <before.txt>",
        "authorization_code (openid) <openid.txt>",
        "authorization_code <after.txt>",
    ]
    (row,) = rows
    assert row["reference_runs_rps"] == [1.0, 3.0]


def test_a_reference_run_that_wrapped_its_pool_exhausts_the_scenario(
    recorder: Recorder,
) -> None:
    (row,) = _level(only="authorization_code (openid)", pools=_pools(after="wraps.txt"))
    assert row["pool_exhausted"]
    report.judge({"rows": [row], "worker_rss_mb": [100.0]})
    assert not row["ok"]


def test_a_baseline_run_is_reused_only_when_nothing_ran_after_it(
    recorder: Recorder,
) -> None:
    by_name = {s.name: s for s in scenarios.service("Basic eA==", _pools())}
    order = ["authorization_code", "authorization_code (openid)", "client_credentials"]
    args = argparse.Namespace(only="")
    server = cast(servers.Server, SimpleNamespace(base_url="http://127.0.0.1:1"))
    loads = [by_name[name] for name in order]
    rows = run.run_level(args, server, server, loads, 64, cast(Settings, None))
    assert recorder.runs == [
        "baseline POST (form + sign)",
        "authorization_code <codes.txt>",
        "baseline POST (form + sign)",
        "authorization_code <before.txt>",
        "authorization_code (openid) <openid.txt>",
        "authorization_code <after.txt>",
        # Not the run before the plain code's reference runs: a fresh one, just before.
        "baseline POST (form + sign)",
        "client_credentials",
        "baseline POST (form + sign)",
    ]
    assert rows[-1]["reference_runs_rps"] == [7.0, 9.0]
