"""A probe result as curves.json series (diag-curves/1), and the document around them.

The one builder of series items: `diag run` (diagnostics/run/curves.py, which says how each
number is computed) and the training-loop monitor (diagnostics/interop/monitor.py) both call
it, so a monitored checkpoint and a case's checkpoint read alike. It lives with the probe so
that the interop layer, below `run`, can use it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..documents import CURVES, Curves
from .estimator import LEVEL
from .matnorms import log_summary, not_a_value
from .metrics import fit_decay


def pooled_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Quantiles over every (anchor, sequence) pair at each lag, values (A, B, K); the pairs
    that are not a number are left out and counted in "nonfinite"."""
    v = np.asarray(values, dtype=float).reshape(-1, values.shape[-1])
    return {**log_summary(v), "nonfinite": not_a_value(v)}


def _fit(lags, median) -> dict[str, Any]:
    f = fit_decay(lags, median)
    return {"slope": f["slope"], "factor": f["factor"], "tau": f["tau"], "horizon": f["horizon"]}


def series_items(label: str, kind: str, checkpoint: int, res, paths, norms) -> list[dict]:
    """One series per (path, norm): quantiles over sequences (and anchors) and the decay fit."""
    out = []
    for path in paths:
        for norm in norms:
            s = pooled_summary(res.log10[(path, norm)])
            out.append({"cell": label, "kind": kind, "checkpoint": int(checkpoint), "path": path,
                        "norm": norm,
                        "log10": {k: s[k] for k in ("median", "q25", "q75", "min", "max")},
                        "nonfinite": [int(c) for c in s["nonfinite"]],
                        "fit": _fit(res.lags, s["median"])})
            out[-1].update(_diverged_pairs(getattr(res, "diverged", None)))
            out[-1].update(_estimated(res, path, norm))
    return out


def influence_items(label: str, kind: str, checkpoint: int, res, paths, norms) -> list[dict]:
    """One `influence` item per (path, norm) of a model cell's lag_influence result (lags
    0..K-1, its own): quantiles over anchors and sequences and the decay fit, as series_items."""
    out = []
    for path in paths:
        for norm in norms:
            s = pooled_summary(res.log10[(path, norm)])
            out.append({"cell": label, "kind": kind, "checkpoint": int(checkpoint), "path": path, "norm": norm,
                        "lags": [int(k) for k in res.lags],
                        "log10": {k: s[k] for k in ("median", "q25", "q75", "min", "max")},
                        "nonfinite": [int(c) for c in s["nonfinite"]],
                        "fit": _fit(res.lags, s["median"])})
            out[-1].update(_estimated(res, path, norm))
    return out


def _estimated(res, path: str, norm: str) -> dict:
    """{"estimated": ...} for a series the probe estimated (probing/estimator.py), else {}: how,
    and for the Frobenius estimate the median over pairs of each pair's interval per lag."""
    how = getattr(res, "estimated", {}).get((path, norm))
    if how is None:
        return {}
    item = {k: how[k] for k in ("kind", "rows", "seed", "value")}
    if (path, norm) in res.interval:
        iv = res.interval[(path, norm)]
        item["interval"] = {"level": LEVEL, "lo": pooled_summary(iv[..., 0])["median"],
                            "hi": pooled_summary(iv[..., 1])["median"],
                            "rel_stderr": pooled_summary(res.rel_stderr[(path, norm)])["median"]}
    return {"estimated": item}


def _diverged_pairs(diverged) -> dict:
    """{"forward_diverged": {"pairs": n, "of": P}} when n > 0 of the probe's P (anchor,
    sequence) pairs diverged, else {} (see diagnostics/run/curves.py)."""
    n = 0 if diverged is None else int(np.count_nonzero(diverged))
    return {"forward_diverged": {"pairs": n, "of": int(np.size(diverged))}} if n else {}


def assemble(name: str, K: int, parts: dict[str, list]) -> Curves:
    """The document, keys in contract order, then the extensions (`sensitivity` only when
    measured, so cases without it write the same file as before it existed), checked against
    the model (non-finite numbers become null)."""
    doc = {"format": CURVES, "case": name, "lags": list(range(1, K + 1))}
    for key in ("series", "lyapunov", "training", "grad_flow", "bounds", "tk_map", "temporal_components"):
        doc[key] = parts.get(key, [])
    if parts.get("sensitivity"):
        doc["sensitivity"] = parts["sensitivity"]
    for key in ("state_decay", "influence", "float32_inside"):   # absent unless there is something to say
        if parts.get(key):
            doc[key] = parts[key]
    return Curves.built(doc, "curves.json as built")
