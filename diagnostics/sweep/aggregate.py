"""Building sweep.json ("diag-sweep/1"; its fields: diagnostics/documents/sweep.py): what a
sweep's points add up to.

Built only from the points' curves.json files and error records (never from timings), in the
grid's order, so the same sweep gives the same bytes whatever order, worker count or number
of interruptions its points ran in.

`final_loss`, `accuracy` (cross-entropy tasks), `within` (the fraction of evaluation
sequences within the task's tolerance; adding: 0.04) and `factor` (the fitted decay factor
ρ of path a after training, primary norm) are {median, q25, q75, n} over the group's
finished points, or null. `horizon` adds `beyond`: how many points had no 3-decade fall
within K lags (counted as larger than any horizon; a quartile that lands on them is null).
`curves` pools, per probe checkpoint, each point's median curve of path a (primary norm):
median and quartiles over the seeds at every lag. `band` gives, per statistic, how far that
statistic could move at each lag if any one seed's curve changed to anything (one_seed_band);
the sweep regression lets a pooled curve move that far, as it lets one trial's success flip
(sweep/tolerances.py).

A trial succeeds when its training did not diverge and the criterion holds; a point that
failed (an exception, a lost worker) is not a trial: it is counted in `failed`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..documents import SWEEP, Curves, Series, Sweep, Training
from ..probing.matnorms import log_quantile
from ..run.curves import pooled_summary
from .engine import point_dir
from .stats import ABOVE_ALL, quartiles, wilson


def _load(folder: Path, pid: str) -> tuple[str, Curves | None, str | None]:
    d = point_dir(folder, pid)
    if (d / "run.json").is_file():
        return "finished", Curves.read(d / "curves.json"), None
    if (d / "error.json").is_file():
        e = json.loads((d / "error.json").read_text(encoding="utf-8"))
        return "failed", None, f"{e.get('type')}: {e.get('message')}"
    return "missing", None, None


def succeeded(tr: Training, success) -> bool:
    return tr.diverged_at is None and success.holds(tr)




def one_seed_band(arr: np.ndarray, q: float) -> dict | None:
    """{lo, hi} per lag of the q-quantile over seeds (rows of arr, log10 values) when any one
    seed's value changes to anything; None when that is unbounded above. The quantile is
    monotone in every value, so the extremes come from replacing the largest value by -inf
    (an exact zero) and the smallest by a value above all."""
    valid = np.isfinite(arr) | np.isneginf(arr)
    cols = np.flatnonzero(valid.any(axis=0))
    low, high = arr.copy(), arr.copy()
    low[np.where(valid, arr, -np.inf)[:, cols].argmax(axis=0), cols] = -np.inf
    high[np.where(valid, arr, np.inf)[:, cols].argmin(axis=0), cols] = ABOVE_ALL
    hi = log_quantile(high, q)
    if (hi[cols] >= ABOVE_ALL * 1e-10).any():   # the quantile reached the stand-in (any weight on it)
        return None
    return {"lo": log_quantile(low, q), "hi": hi}


def _pooled(per_point: list[dict[int, Series]], lags: int) -> list[dict]:
    cks = sorted({ck for d in per_point for ck in d})
    out = []
    for ck in cks:
        series = [d[ck] for d in per_point if ck in d]
        arr = np.array([[-math.inf if x is None else x for x in s.log10.median[:lags]] for s in series], dtype=float)
        s = pooled_summary(arr)
        band = {stat: one_seed_band(arr, q) for stat, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))}
        out.append({"checkpoint": ck, "seeds": len(series), "median": s["median"], "q25": s["q25"], "q75": s["q75"],
                    "band": band, **_estimated(series)})
    return out


def _estimated(series: list[Series]) -> dict:
    """{"estimated": ...} when any pooled curve was estimated (say so: the pooled curve is of
    estimates), else {}."""
    how = {(s.estimated.kind, s.estimated.rows, s.estimated.value) for s in series if s.estimated is not None}
    if not how:
        return {}
    kind, rows, value = min(how)    # one case: the same estimator at every point but its seed
    return {"estimated": {"kind": kind, "rows": rows, "value": value}}


def _cell_entry(label: str, kind: str, items: list[tuple[Training | None, dict[int, Series]]], failed: int,
                success, lags: int) -> dict:
    """items: (training item, series of path a by checkpoint) of each finished point."""
    trials = len(items)
    wins = sum(1 for tr, _ in items if tr is not None and succeeded(tr, success))
    low, high = wilson(wins, trials)
    trs = [tr for tr, _ in items if tr is not None]
    lasts = [by[max(by)] for _, by in items if by]     # each point's series at its last checkpoint
    return {"cell": label, "kind": kind, "trials": trials, "successes": wins,
            "rate": wins / trials if trials else None, "wilson95": [low, high],
            "diverged": sum(1 for tr in trs if tr.diverged_at is not None), "failed": failed,
            "memoryless_loss": trs[0].memoryless_loss if trs else None,
            "final_loss": quartiles([tr.final_loss for tr in trs]),
            "accuracy": quartiles([tr.final_accuracy for tr in trs]),
            "within": quartiles([tr.final_within for tr in trs]),
            "factor": quartiles([s.fit.factor for s in lasts]),
            "horizon": quartiles([s.fit.horizon for s in lasts], beyond=True),
            "curves": _pooled([by for _, by in items], lags)}


def aggregate(sweep, folder: Path) -> Sweep:
    """The sweep.json document of `sweep` from the points written under `folder`."""
    folder = Path(folder)
    points, reasons, groups = [], {}, {}
    labels = list(sweep.points[0].spec.labels) if sweep.points else []
    kinds = {lab: c.kind for lab, c in zip(labels, sweep.points[0].spec.cells)} if sweep.points else {}
    diverged = 0
    for p in sweep.points:
        status, curves, error = _load(folder, p.id)
        gkey = json.dumps([p.values[k] for k in sweep.group_keys], sort_keys=True)
        g = groups.setdefault(gkey, {"values": {k: p.values[k] for k in sweep.group_keys},
                                     "lags": None, "items": {lab: [] for lab in labels}, "failed": 0})
        entry = {"index": p.index, "id": p.id, "values": p.values, "status": status, "error": error, "cells": []}
        if status == "failed":
            reasons[error.split(":")[0]] = reasons.get(error.split(":")[0], 0) + 1
        if curves is None:
            g["failed"] += 1
        else:
            g["lags"] = g["lags"] or curves.lags
            series = curves.a_series()
            for lab in labels:
                by = {ck: s for (c, ck), s in series.items() if c == lab}
                tr = curves.training_of(lab)
                g["items"][lab].append((tr, by))
                if tr is not None:
                    diverged += tr.diverged_at is not None
                    entry["cells"].append({"cell": lab, "success": succeeded(tr, sweep.file.success),
                                           "final_loss": tr.final_loss, "diverged_at": tr.diverged_at})
        points.append(entry)
    out_groups = []
    for g in groups.values():
        K = len(g["lags"] or [])
        out_groups.append({"values": g["values"], "lags": g["lags"] or [],
                           "cells": [_cell_entry(lab, kinds[lab], g["items"][lab], g["failed"], sweep.file.success, K)
                                     for lab in labels]})
    status = [p["status"] for p in points]
    doc = {"format": SWEEP, "sweep": sweep.name,
           "case": sweep.points[0].spec.name if sweep.points else None, "quick": sweep.quick,
           "keys": list(sweep.keys), "seed_key": sweep.seed_key, "success": sweep.file.success.document(),
           "counts": {"points": len(points), "finished": status.count("finished"), "failed": status.count("failed"),
                      "missing": status.count("missing"), "reasons": dict(sorted(reasons.items())),
                      "diverged": diverged},
           "points": points, "groups": out_groups}
    return Sweep.built(doc, "sweep.json as built")
