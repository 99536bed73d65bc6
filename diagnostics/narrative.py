"""What a run showed, in sentences generated from its own numbers (the report opens with them,
`diag run` prints them), and the warnings a reader must not miss.

    opening(curves, summary) -> ["Over 60 lags, the tanh RNN's gradient ... ", ...]
    warnings(curves)         -> ["LSTM (step 150, path a): 3 of 16 ... diverged ...", ...]

Only numbers in curves.json and the summary rows are used, so the words cannot disagree with
the figures; nothing is claimed that the numbers do not show.
"""
from __future__ import annotations

import math

from .documents import primary_norm

WITHIN = 1.0   # decades: "stays within one decade of lag 1"


def _median(curves: dict, cell: str, ck: int, norm: str) -> list[float] | None:
    for s in curves.get("series", []):
        if (s["cell"], s["checkpoint"], s["path"], s["norm"]) == (cell, ck, "a", norm):
            return [(-math.inf if v is None else float(v)) for v in s["log10"]["median"]]
    return None


def _last_rows(summary: list[dict]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for r in summary:
        if r["cell"] not in rows or r["checkpoint"] >= rows[r["cell"]]["checkpoint"]:
            rows[r["cell"]] = r
    return rows


def _decay_phrase(cell: str, y: list[float]) -> str:
    first, last = y[0], y[-1]
    if math.isinf(first) and first < 0:
        return f"is exactly zero from lag 1 for the {cell}"
    if math.isinf(last) and last < 0:
        k = next(i for i, v in enumerate(y) if math.isinf(v)) + 1
        return f"becomes exactly zero at lag {k} for the {cell}"
    change = last - first
    if abs(change) <= WITHIN:
        return f"stays within one decade of its lag-1 value for the {cell}"
    return f"{'falls' if change < 0 else 'grows'} {abs(change):.1f} decades for the {cell}"


def opening(curves: dict, summary: list[dict], imported=()) -> list[str]:
    """Two or three sentences: how each cell's a-path decays, how training ended, the contrast.
    `imported`: labels of cells read from weight files (their checkpoint 0 is not an
    initialisation)."""
    norms = sorted({s["norm"] for s in curves.get("series", [])})
    norm = primary_norm(norms)
    rows = _last_rows(summary)
    if not rows:
        return []
    ck = max(r["checkpoint"] for r in rows.values())
    K = len(curves.get("lags", []))
    if ck > 0:
        when = f"after {ck} training steps"
    elif imported:
        when = ("with the weights as read from their files" if set(imported) >= set(rows)
                else "with the imported weights as read (the other cells at initialisation)")
    else:
        when = "at initialisation"
    phrases = [_decay_phrase(c, y) for c in rows if (y := _median(curves, c, rows[c]["checkpoint"], norm))]
    out = []
    if phrases:
        out.append(f"Over {K} lags {when}, ‖∂a<t>/∂a<t-k>‖ ({norm} norm, median over sequences) "
                   + _join(phrases) + ".")
    trained = [r for r in rows.values() if r.get("final_loss") is not None and r.get("baseline")]
    if trained:
        out.append(f"On a held-out evaluation batch {when}, " + _join([_loss_phrase(r) for r in trained]) + ".")
    fits = [r for r in rows.values() if r.get("factor") is not None and not math.isnan(r["factor"])]
    if len(fits) >= 2:
        slow = max(fits, key=lambda r: r["factor"])
        fast = min(fits, key=lambda r: r["factor"])
        if slow is not fast:
            s = (f"The slowest decay is the {slow['cell']}'s (ρ = {slow['factor']:.3g} per step, "
                 f"{_horizon(slow, K)}); the fastest the {fast['cell']}'s (ρ = {fast['factor']:.3g}, {_horizon(fast, K)}).")
            best = min(trained, key=lambda r: r["final_loss"] / r["baseline"]) if trained else None
            if best is not None and best["cell"] != slow["cell"] and best["final_loss"] < slow["final_loss"]:
                s += (f" Yet the {best['cell']} reaches the lower loss: a slowly decaying gradient is "
                      "necessary for a long dependency, not sufficient.")
            out.append(s)
    return out


def _horizon(r: dict, K: int) -> str:
    return f"horizon {r['horizon']} steps" if r.get("horizon") is not None else f"no 3-decade fall within {K} lags"


def _loss_phrase(r: dict) -> str:
    loss, base = r["final_loss"], r["baseline"]
    ratio = base / loss if loss > 0 else math.inf
    if ratio >= 1.25:
        solved = ", solved" if r.get("solved") else ""
        return f"the {r['cell']}'s loss is {ratio:.3g}x below the memoryless baseline ({loss:.3g} against {base:.3g}{solved})"
    if ratio <= 0.8:
        return f"the {r['cell']}'s loss is above the memoryless baseline ({loss:.3g} against {base:.3g})"
    return f"the {r['cell']}'s loss stays at the memoryless baseline ({loss:.3g} against {base:.3g})"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def warnings(curves: dict) -> list[str]:
    """Diverged (NaN) pairs left out of quantiles, and probes that sat at a fixed point."""
    out = []
    for s in curves.get("series", []):
        counts = s.get("nonfinite") or []
        if any(counts):
            k = next(i for i, c in enumerate(counts) if c) + 1
            out.append(f"{s['cell']} (step {s['checkpoint']}, path {s['path']}, {s['norm']} norm): up to "
                       f"{max(counts)} (sequence, anchor) pairs were not a number (the sequence diverged) "
                       f"from lag {k} on; the quantiles are over the others.")
    for x in curves.get("lyapunov", []):
        if x.get("fixed_point"):
            out.append(f"{x['cell']} (step {x['checkpoint']}): the probe stream left the state at a fixed point "
                       "(it did not move after the warm-up), so the Lyapunov exponents are the log moduli of "
                       "that fixed point's Jacobian eigenvalues, not the rates along a moving trajectory; "
                       "give the probe inputs that move the state (e.g. task inputs: gaussian).")
    return out
