"""Benchmark suite of the token paths (issue 7): ``python -m bench.run`` or ``make bench``."""
