"""A light ``/healthz`` prober (50 requests/s on one keep-alive connection) run beside a saturating load.

50 a second gives about 400 samples in an 8 s run, so the p99 is the fourth-slowest answer rather than the
second-slowest of 160: one stall of a virtual CPU by the hypervisor no longer decides it alone.
"""

import http.client
import threading
import time
from urllib.parse import urlsplit


class HealthProbe:
    """Measures ``/healthz`` latency in a background thread until ``stop()``."""

    def __init__(self, base_url: str, *, interval: float = 0.02) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._interval = interval
        self._stop = threading.Event()
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "HealthProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=5)
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
                else:
                    self.latencies_ms.append((time.perf_counter() - start) * 1000)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection(self._host, self._port, timeout=5)
            self._stop.wait(self._interval)
        conn.close()

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0-1) of the latencies, in milliseconds."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
