"""Starting and stopping the servers under test, waiting for readiness, and reading worker memory (RSS)."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A server process (a uvicorn supervisor with its workers)."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> None:
        """Ask for a graceful shutdown, then insist."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_environ(self, name: str) -> list[str | None]:
        """The value of environment variable ``name`` in each worker process."""
        values: list[str | None] = []
        for pid in _children(self.process.pid):
            if not _is_worker(pid):
                continue
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            found = [
                e.split(b"=", 1)[1]
                for e in raw.split(b"\0")
                if e.startswith(name.encode() + b"=")
            ]
            values.append(found[0].decode() if found else None)
        return values

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker process (the supervisor's children), in MiB."""
        return [rss_mb(pid) for pid in _children(self.process.pid) if _is_worker(pid)]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the supervisor and its workers (all threads), in seconds."""
        pids = [self.process.pid, *_children(self.process.pid)]
        return sum(cpu_seconds(pid) for pid in pids)

    def wait_idle(
        self, *, quiet: float = 0.5, busy: float = 0.05, timeout: float = 60.0
    ) -> float:
        """Wait until the server has finished the work a load left queued; return the seconds waited.

        When wrk stops, requests it sent are still queued in the server (32 password requests per worker
        wait for a hash thread). They run on, at a low priority for argon2, while the next measurement
        starts: they would take CPU from it and inflate its memory reading. Idle means that the server used
        less than ``busy`` of one CPU over ``quiet`` seconds.
        """
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(quiet)
            after = self.cpu_seconds()
            if after - before < busy * quiet:
                return time.monotonic() - started
            before = after
        print(
            f"warning: {self.name} still busy after {timeout:.0f} s; the next figures may be disturbed"
        )
        return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and all its threads (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"resource_tracker" not in cmdline


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start(
    name: str, argv: list[str], *, port: int, env: Mapping[str, str], log_dir: Path
) -> Server:
    """Start ``argv`` with its output in ``log_dir/<name>.log`` and wait until ``/healthz`` or ``/get`` answers."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    _wait_ready(server)
    return server


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        for path in ("/readyz", "/get"):
            try:
                with urllib.request.urlopen(server.base_url + path, timeout=1) as resp:
                    if resp.status == 200:
                        time.sleep(1.0)  # let every worker finish its start-up too
                        return
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready; see {server.log}")


def oauth_service(
    port: int, workers: int, env: Mapping[str, str], log_dir: Path
) -> Server:
    """``oauth-service serve --workers N`` (the supported way to run the service)."""
    argv = [
        str(BIN / "oauth-service"),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return start("service", argv, port=port, env=env, log_dir=log_dir)


def baseline(port: int, workers: int, env: Mapping[str, str], log_dir: Path) -> Server:
    """The bare FastAPI baseline on the same uvicorn options."""
    argv = [
        sys.executable,
        "-m",
        "bench.baseline_app",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return start("baseline", argv, port=port, env=env, log_dir=log_dir)


def migrate(env: Mapping[str, str]) -> None:
    """``oauth-service migrate`` against the benchmark database."""
    subprocess.run(
        [str(BIN / "oauth-service"), "migrate"],
        cwd=REPO,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
