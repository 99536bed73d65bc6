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
    phrases: list[str] = []
    ys = {c: _median(curves, c, rows[c]["checkpoint"], norm) for c in rows}
    # an infinite end gives inf or NaN here, never <= WITHIN
    within = [c for c, y in ys.items() if y and abs(y[-1] - y[0]) <= WITHIN]
    for c, y in ys.items():
        if y and c not in within:
            phrases.append(_decay_phrase(c, y))
    if within:   # one phrase for all the cells it fits
        phrases.append(f"stays within one decade of its lag-1 value for the {_join(within)}")
    out = []
    if phrases:
        out.append(f"Over {K} lags {when}, ‖∂a<t>/∂a<t-k>‖ ({norm} norm, median over sequences) "
                   + _join(phrases) + ".")
    trained = [r for r in rows.values() if r.get("final_loss") is not None and r.get("baseline")]
    if trained:
        out.append(f"On a held-out evaluation batch {when}, " + _loss_sentence(trained) + ".")
    fits = [r for r in rows.values() if r.get("factor") is not None and not math.isnan(r["factor"])]
    decaying = [r for r in fits if r["factor"] < 1]
    if len(decaying) >= 2:
        slow = max(decaying, key=lambda r: r["factor"])
        fast = min(decaying, key=lambda r: r["factor"])
        s = (f"Of the decaying curves the slowest is the {slow['cell']}'s (ρ = {slow['factor']:.3g} per step, "
             f"{_horizon(slow, K)}) and the fastest the {fast['cell']}'s (ρ = {fast['factor']:.3g}, {_horizon(fast, K)})")
        growing = [r["cell"] for r in fits if r["factor"] > 1]
        out.append(s + (f"; {_join([f'the {g}' for g in growing])} {'grows' if len(growing) == 1 else 'grow'} "
                        "(ρ > 1)." if growing else "."))
    # the honest contrast: cells whose gradient survives the lags yet which learned nothing,
    # beside a cell that did learn
    learned = [r["cell"] for r in trained if r["final_loss"] > 0 and r["baseline"] / r["final_loss"] >= 1.25]
    idle = [r["cell"] for r in trained if r["cell"] in within and r["cell"] not in learned]
    if idle and learned:
        one = len(idle) == 1
        out.append(f"The {_join(idle)} {'keeps its' if one else 'keep their'} gradient within one decade over the "
                   f"{K} lags yet stay{'s' if one else ''} at the baseline: a slowly decaying gradient "
                   "is necessary for learning a long dependency, not sufficient.")
    return out


def _horizon(r: dict, K: int) -> str:
    return f"horizon {r['horizon']} steps" if r.get("horizon") is not None else f"no 3-decade fall within {K} lags"


def _loss_sentence(rows: list[dict]) -> str:
    """Cells grouped by outcome against the memoryless baseline (one baseline per task)."""
    below, at, above = [], [], []
    for r in rows:
        loss, base = r["final_loss"], r["baseline"]
        ratio = base / loss if loss > 0 else math.inf
        if ratio >= 1.25:
            below.append(f"{ratio:.3g}x below it for the {r['cell']} ({loss:.3g}{', solved' if r.get('solved') else ''})")
        elif ratio <= 0.8:
            above.append(f"{r['cell']} ({loss:.3g})")
        else:
            at.append(f"{r['cell']} ({loss:.3g})")
    base = rows[0]["baseline"]
    parts = []
    if at:
        parts.append(f"the loss stays at the memoryless baseline {base:.3g} for the {_join(at)}")
    if above:
        parts.append(f"it is above the baseline for the {_join(above)}")
    if below:
        parts.append(("it is " if parts else f"against the memoryless baseline {base:.3g} the loss is ") + _join(below))
    return "; ".join(parts)


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
