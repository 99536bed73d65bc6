"""sweep.json, the "diag-sweep/1" contract: what a sweep's points add up to.

Built only from the points' curves.json files and error records (never from timings), in the
grid's order, so the same sweep gives the same bytes whatever order, worker count or number
of interruptions its points ran in. Fields, in order:

    format      "diag-sweep/1"
    sweep       the sweep's name;  case: the base case's name;  quick: --quick or not
    keys        the varied key paths, in the file's order;  seed_key: "seed" when varied, else null
    success     {kind, value, description}: task | loss_below_baseline | accuracy_at_least | within_at_least
    counts      {points, finished, failed, missing, reasons: {error type: count},
                 diverged: cell trainings that diverged}
    points[]    {index, id, values {key: value}, status finished|failed|missing,
                 error "Type: message" | null,
                 cells[] {cell, success, final_loss, diverged_at}}
    groups[]    one per combination of the varied keys other than the seed:
                {values {key: value}, lags [1..K],
                 cells[] {cell, kind, trials (finished points), successes, rate (null at 0
                          trials), wilson95 [low, high], diverged, failed (points without a
                          result), baseline, final_loss, accuracy, within, factor, horizon,
                          curves[] {checkpoint, seeds, median, q25, q75, band}}}

`final_loss`, `accuracy` (cross-entropy tasks), `within` (the fraction of evaluation
sequences within the task's tolerance; adding: 0.04) and `factor` (the fitted decay factor
ρ of path a after training, primary norm) are {median, q25, q75, n} over the group's
finished points, or null. `horizon` adds `beyond`: how many points had no 3-decade fall
within K lags (counted as larger than any horizon; a quartile that lands on them is null).
`curves` pools, per probe checkpoint, each point's median curve of path a (primary norm):
median and quartiles over the seeds at every lag (null = an exact zero, as in curves.json).
`band` gives, per statistic, {lo, hi}: how far that statistic could move at each lag if any
one seed's curve changed to anything (lo: the largest seed's value replaced by an exact zero;
hi: the smallest by a value above all), or null where too few seeds bound it (hi would be
unbounded: fewer than 5 seeds for a quartile, 3 for the median). The sweep regression lets a
pooled curve move that far, as it lets one trial's success flip (sweep/tolerances.py).

A trial succeeds when its training did not diverge and the criterion holds; a point that
failed (an exception, a lost worker) is not a trial: it is counted in `failed`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..documents import SWEEP, primary_norm
from ..io import json_safe
from ..probing.matnorms import log_quantile
from ..run.curves import pooled_summary
from .engine import point_dir
from .stats import ABOVE_ALL, quartiles, wilson


def _load(folder: Path, pid: str) -> tuple[str, dict | None, str | None]:
    d = point_dir(folder, pid)
    if (d / "run.json").is_file():
        return "finished", json.loads((d / "curves.json").read_text(encoding="utf-8")), None
    if (d / "error.json").is_file():
        e = json.loads((d / "error.json").read_text(encoding="utf-8"))
        return "failed", None, f"{e.get('type')}: {e.get('message')}"
    return "missing", None, None


def succeeded(tr: dict, success) -> bool:
    return tr.get("diverged_at") is None and success.holds(tr)


def _a_series(curves: dict) -> dict:
    """(cell, checkpoint) -> the series of path a in the primary norm."""
    norm = primary_norm(sorted({s["norm"] for s in curves["series"]}))
    return {(s["cell"], s["checkpoint"]): s for s in curves["series"] if s["path"] == "a" and s["norm"] == norm}




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


def _pooled(per_point: list[dict], lags: int) -> list[dict]:
    cks = sorted({ck for d in per_point for ck in d})
    out = []
    for ck in cks:
        rows = [d[ck] for d in per_point if ck in d]
        arr = np.array([[-math.inf if x is None else x for x in r[:lags]] for r in rows], dtype=float)
        s = pooled_summary(arr)
        band = {stat: one_seed_band(arr, q) for stat, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))}
        out.append({"checkpoint": ck, "seeds": len(rows), "median": s["median"], "q25": s["q25"], "q75": s["q75"],
                    "band": band})
    return out


def _cell_entry(label: str, kind: str, items: list[tuple], failed: int, success, lags: int) -> dict:
    """items: (training item, series by checkpoint, last series) of each finished point."""
    trials = len(items)
    wins = sum(1 for tr, _, _ in items if tr is not None and succeeded(tr, success))
    low, high = wilson(wins, trials)
    trs = [tr for tr, _, _ in items if tr is not None]
    return {"cell": label, "kind": kind, "trials": trials, "successes": wins,
            "rate": wins / trials if trials else None, "wilson95": [low, high],
            "diverged": sum(1 for tr in trs if tr.get("diverged_at") is not None), "failed": failed,
            "baseline": trs[0].get("baseline") if trs else None,
            "final_loss": quartiles([tr.get("final_loss") for tr in trs]),
            "accuracy": quartiles([tr.get("final_accuracy") for tr in trs]),
            "within": quartiles([tr.get("final_within") for tr in trs]),
            "factor": quartiles([last["fit"]["factor"] for _, _, last in items if last]),
            "horizon": quartiles([last["fit"]["horizon"] for _, _, last in items if last], beyond=True),
            "curves": _pooled([{ck: s["log10"]["median"] for ck, s in by.items()} for _, by, _ in items], lags)}


def aggregate(sweep, folder: Path) -> dict:
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
            g["lags"] = g["lags"] or curves["lags"]
            train = {t["cell"]: t for t in curves["training"]}
            series = _a_series(curves)
            for lab in labels:
                by = {ck: s for (c, ck), s in series.items() if c == lab}
                last = by[max(by)] if by else None
                tr = train.get(lab)
                g["items"][lab].append((tr, by, last))
                if tr is not None:
                    diverged += tr.get("diverged_at") is not None
                    entry["cells"].append({"cell": lab, "success": succeeded(tr, sweep.file.success),
                                           "final_loss": tr.get("final_loss"), "diverged_at": tr.get("diverged_at")})
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
    return json_safe(doc)
