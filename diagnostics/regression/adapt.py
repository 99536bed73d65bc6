"""Turn a probe of (cell, params, xs) into a diag-curves/1 dict, so a user's test can regression-check
a cell without writing a case file:

    curves = curves_from_probe(cell, params, xs, label="my lstm", lyapunov=4)
    curves = curves_from_result(probe(cell, params, xs), label="my lstm", kind="lstm")

The series use the same summaries and fit as `diag run` (probe.summary, metrics.fit_decay), so a
baseline written here reads like a case's curves.json.
"""
from __future__ import annotations

import numpy as np

from ..io import json_safe

STATS = ("median", "q25", "q75", "min", "max")


def curves_from_result(res, *, label: str = "cell", kind: str = "cell", checkpoint: int = 0,
                       name: str = "probe") -> dict:
    """A ProbeResult (from diagnostics.probe.probe) as diag-curves/1 series, last anchor."""
    from ..metrics import fit_decay

    k = np.asarray(res.lags)
    series = []
    for path in res.paths:
        for norm in res.norms:
            s = res.summary(path, norm)
            fit = fit_decay(k, np.asarray(s["median"]))
            series.append({"cell": label, "kind": kind, "checkpoint": checkpoint, "path": path, "norm": norm,
                           "log10": {st: np.asarray(s[st]) for st in STATS if st in s},
                           "fit": {f: fit.get(f) for f in ("slope", "factor", "tau", "horizon")}})
    return json_safe({"format": "diag-curves/1", "case": name, "lags": k, "series": series,
                      "lyapunov": [], "training": [], "grad_flow": []})


def curves_from_probe(cell, params, xs, *, label: str | None = None, checkpoint: int = 0,
                      name: str = "probe", lags: int | None = None, paths=None,
                      norms=("spectral", "frobenius"), lyapunov: int = 0) -> dict:
    """Probe `cell` on inputs xs (T, B, d) and return curves in the diag-curves/1 shape."""
    from ..probe import probe

    xs = np.asarray(xs, dtype=np.float64)
    label = label or cell.kind
    res = probe(cell, params, xs, lags=lags, paths=paths, norms=tuple(norms))
    out = curves_from_result(res, label=label, kind=cell.kind, checkpoint=checkpoint, name=name)
    if lyapunov:
        from ..lyapunov import lyapunov_spectrum
        ex = lyapunov_spectrum(cell, params, xs, m=lyapunov)
        out["lyapunov"].append(json_safe({"cell": label, "checkpoint": checkpoint,
                                          "path": "a" if cell.state_size == cell.hidden else "state",
                                          "exponents": ex}))
    return out
