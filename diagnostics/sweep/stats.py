"""The statistics of a sweep: success rates with Wilson intervals, quartiles over seeds.

Wilson score interval (REFERENCES item 24), k successes in n trials, z = 1.96 (95%):

    (p + z²/2n ± z sqrt(p(1 - p)/n + z²/4n²)) / (1 + z²/n),  p = k/n

chosen over the normal approximation p ± z sqrt(p(1-p)/n) because that one collapses to
[0, 0] at k = 0 and [1, 1] at k = n, which are the common outcomes of a long-lag task: 0 of
10 trials still allows a true rate up to 0.28.
"""
from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054   # the 0.975 quantile of the standard normal
# a finite stand-in for "larger than any value here": a horizon beyond K lags, a log10 norm
# above all (matnorms.log_quantile, the quantile of log values, leaves +inf out)
ABOVE_ALL = 1e300


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval; (0, 1) when there were no trials."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"successes: must lie in 0..{n}, got {k}")
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    # exact at the ends: k = 0 has low 0, k = n has high 1 (rounding would leave 1e-17)
    low = 0.0 if k == 0 else (centre - half) / denom
    high = 1.0 if k == n else (centre + half) / denom
    return low, high


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def quartiles(values, beyond: bool = False) -> dict | None:
    """Median and quartiles (linear interpolation) of the finite values; None when there are
    none. `n` says how many values there were.

    beyond=True: a None is a value larger than any (a horizon not reached within K lags), not
    a missing one: `beyond` counts them, and a quartile with any weight on one is None."""
    if beyond:
        v = np.asarray([ABOVE_ALL if x is None else float(x) for x in values], dtype=float)
    else:
        v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    out = {name: None if beyond and x >= ABOVE_ALL * 1e-10 else float(x)   # any weight on the stand-in
           for name, x in (("median", med), ("q25", q25), ("q75", q75))}
    out["n"] = int(v.size)
    if beyond:
        out["beyond"] = int((v == ABOVE_ALL).sum())
    return out
