"""Building curves.json ("diag-curves/1") from probe results and training results.

Only numbers that depend on the case and seed go here (no timings, no machine facts), so the
same case and seed give a byte-identical file; run.json carries the rest.

Nulls. log10 of an exact zero is -inf, written null; it is a value (the smallest one) and
takes part in the quantiles. A NaN or +inf from the probe (a sequence whose numbers diverged)
is not a value: the quantiles are over the other (sequence, anchor) pairs, and each series
carries `nonfinite`, per lag how many pairs were left out, so a null can never stand for a
diverged sequence unannounced (a lag where every pair diverged has null quantiles and
`nonfinite` equal to the pair count).

A training item's `final_within` is the fraction of evaluation sequences whose answer is
within the task's `within_tolerance` (adding: 0.04, the 1997 paper's measure), null for a
task that states none.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .documents import CURVES
from .matnorms import log_quantile, not_a_value, value_extremes
from .metrics import fit_decay
from .numfmt import fmt

STATS = (("median", 0.5), ("q25", 0.25), ("q75", 0.75))


def pooled_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Quantiles over every (anchor, sequence) pair at each lag, values (A, B, K); the pairs
    that are not a number are left out and counted in "nonfinite"."""
    v = np.asarray(values, dtype=float).reshape(-1, values.shape[-1])
    out = {name: log_quantile(v, q) for name, q in STATS}
    out["min"], out["max"] = value_extremes(v)
    out["nonfinite"] = not_a_value(v)
    return out


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
    return out


def tk_item(label: str, checkpoint: int, path: str, norm: str, K: int,
            anchors, rows: list[np.ndarray]) -> dict:
    """Median curve at each anchor; an anchor t < K has no lags beyond t (null there)."""
    padded = []
    for r in rows:
        r = np.asarray(r, dtype=float)
        padded.append(list(r) + [None] * (K - r.size))
    return {"cell": label, "checkpoint": int(checkpoint), "path": path, "norm": norm,
            "anchors": [int(a) for a in anchors], "log10_median": padded}


def _at(steps, values, step):
    for s, v in zip(steps, values):
        if int(s) == int(step):
            return v
    return None


def training_item(label: str, result, checkpoints, loss_kind) -> dict:
    steps = [int(s) for s in result.steps]
    loss = [float(v) for v in result.loss]
    return {"cell": label, "step": steps, "loss": loss,
            "grad_norm": [float(v) for v in result.grad_norm],
            "baseline": result.baseline, "diverged_at": result.diverged_at,
            "checkpoints": [int(c) for c in checkpoints],
            "loss_at_checkpoints": [_at(steps, loss, c) for c in checkpoints],
            "final_loss": result.final_loss, "final_accuracy": result.final_accuracy,
            "solved": bool(result.solved), "loss_kind": loss_kind,
            "final_within": getattr(result, "final_within", None)}


def _per_checkpoint(label: str, by_checkpoint, x_key: str) -> list[dict]:
    """{checkpoint: (x, log10)} from the trainer -> curves.json items, checkpoints in order."""
    out = []
    for ck in sorted(by_checkpoint or {}):
        x, lg = by_checkpoint[ck]
        out.append({"cell": label, "checkpoint": int(ck), x_key: [int(v) for v in np.asarray(x)],
                    "log10": np.asarray(lg, dtype=float)})
    return out


def grad_flow_items(label: str, result) -> list[dict]:
    return _per_checkpoint(label, getattr(result, "grad_flow", None), "t")


def temporal_items(label: str, result) -> list[dict]:
    return _per_checkpoint(label, getattr(result, "temporal_components", None), "lags")


def assemble(name: str, K: int, parts: dict[str, list]) -> dict:
    """The document, keys in contract order, then the extensions."""
    doc = {"format": CURVES, "case": name, "lags": list(range(1, K + 1))}
    for key in ("series", "lyapunov", "training", "grad_flow", "bounds", "tk_map", "temporal_components"):
        doc[key] = parts.get(key, [])
    return doc


def summary_rows(curves: dict, cells: list[tuple[str, str]], norm: str) -> list[dict]:
    """Per cell and checkpoint: the fit of path "a" in `norm` (documents.primary_norm: the one
    rule for which norm a summary reads), top Lyapunov exponent, training outcome."""
    rows = []
    train = {t["cell"]: t for t in curves["training"]}
    lyap = {(x["cell"], x["checkpoint"]): x["exponents"] for x in curves["lyapunov"]}
    fixed = {(x["cell"], x["checkpoint"]) for x in curves["lyapunov"] if x.get("fixed_point")}
    for s in curves["series"]:
        if s["path"] != "a" or s["norm"] != norm:
            continue
        label, ck = s["cell"], s["checkpoint"]
        tr = train.get(label)
        ex = lyap.get((label, ck))
        final = (tr["final_loss"] if tr and ck == max(tr["checkpoints"]) else
                 (tr["loss_at_checkpoints"][tr["checkpoints"].index(ck)] if tr else None))
        rows.append({"cell": label, "kind": dict(cells).get(label, s["kind"]), "checkpoint": ck,
                     "factor": s["fit"]["factor"], "tau": s["fit"]["tau"],
                     "horizon": s["fit"]["horizon"],
                     "lyapunov_top": ex[0] if ex else None,   # null: -inf (an exactly singular step)
                     "fixed_point": (label, ck) in fixed,
                     "nonfinite": max(s.get("nonfinite") or [0]),
                     "final_loss": final, "baseline": tr["baseline"] if tr else None,
                     "solved": tr["solved"] if tr and ck == max(tr["checkpoints"]) else None})
    return rows


def summary_table(rows: list[dict]) -> str:
    """The terminal table printed at the end of `diag run`."""
    head = ("cell", "ckpt", "factor", "tau", "horizon", "lyap top", "loss", "baseline", "solved")
    def tau(r):  # a null tau with factor >= 1: nothing decays, the curve grows by ρ per step
        if r["tau"] is None and r["factor"] is not None and r["factor"] >= 1:
            return "none (grows)" if r["factor"] == 1 else f"grows x{r['factor']:.4g}/step"
        return fmt(r["tau"], ".3g")
    body = [(r["cell"], str(r["checkpoint"]), fmt(r["factor"], ".4f"), tau(r),
             fmt(r["horizon"], "d"), fmt(r["lyapunov_top"], "+.4f"), fmt(r["final_loss"], ".4g"),
             fmt(r["baseline"], ".4g"),
             "-" if r["solved"] is None else ("yes" if r["solved"] else "no")) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cols: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(b) for b in body])
