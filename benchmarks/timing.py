"""What the benchmark scripts share: the best of a few timed runs (the scripts run as
`python benchmarks/NAME.py`, so this folder is on the path)."""
from __future__ import annotations

import time


def best_of(fn, runs: int = 2):
    """(the fastest of `runs` calls of fn in seconds, the last call's result)."""
    best, out = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
