"""The comparison as an aligned text table, in the manner of pytest-regressions.

    gradient curves: 2 of 118 checks FAILED (decades=0.05 ...)
    series                      what   worst lag  expected (baseline)  obtained (current)  difference  tolerance
    LSTM ckpt=0 c/spectral q25  point         37              -1.2345             -1.3001     -0.0656     0.0500
"""
from __future__ import annotations

import math

from ..numfmt import fmt

HEADERS = ("series", "what", "worst lag", "expected (baseline)", "obtained (current)",
           "difference", "tolerance", "status")
RIGHT = {2, 3, 4, 5, 6}


def fmt_value(v) -> str:
    """4 decimals, or 4 significant digits for very small and very large values."""
    if isinstance(v, bool) or not isinstance(v, float) or not math.isfinite(v):
        return fmt(v, "d" if isinstance(v, int) and not isinstance(v, bool) else ".4g", none="null")
    return fmt(v, ".4g" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5)) else ".4f")


def fmt_diff(row) -> str:
    if row.difference is None:
        words = ("missing", "lags", "duplicate", "diverged", "nonfinite", "estimator")
        return "" if row.what in words or row.ok else "inf"
    d = row.difference
    return f"{d:+.4g}" if d != 0 and abs(d) < 1e-3 else f"{d:+.4f}"


def fmt_lag(row) -> str:
    if row.lag is None:
        return ""
    if row.what == "loss":
        return f"step {row.lag}"
    if row.what == "lyapunov":
        return f"#{row.lag}"
    return str(row.lag)


def cells_of(row) -> tuple[str, ...]:
    return (row.series, row.what, fmt_lag(row), fmt_value(row.baseline), fmt_value(row.current),
            fmt_diff(row), "" if row.tolerance is None else f"{row.tolerance:.3g}",
            "ok" if row.ok else "FAIL")


def format_table(cmp, all_rows: bool = False) -> str:
    """Failing rows (or every row with all_rows=True) under a one-line verdict."""
    n, bad = len(cmp.rows), len(cmp.failing)
    head = (f"{cmp.subject}: {bad} of {n} checks FAILED" if bad
            else f"{cmp.subject}: all {n} checks passed")
    moved = sorted({str(r.key[1]) for r in cmp.failing if len(r.key) > 1})
    if moved:                                   # which cells moved, before the detail
        head += f" in {', '.join(moved)}"
    head += f" ({cmp.tol.label()})"
    rows = cmp.rows if all_rows else cmp.failing
    if not rows:
        return head
    grid = [HEADERS] + [cells_of(r) for r in rows]
    widths = [max(len(g[i]) for g in grid) for i in range(len(HEADERS))]
    lines = [head]
    for j, g in enumerate(grid):
        parts = [g[i].rjust(widths[i]) if i in RIGHT else g[i].ljust(widths[i]) for i in range(len(g))]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)
