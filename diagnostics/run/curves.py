"""Building curves.json ("diag-curves/1") from probe results and training results.

The fields, what each means and which are absent when there is nothing to say are the models'
in diagnostics/documents/curves.py; `assemble` checks what is built here against them, so a
renamed field fails in the tests. This module says how the numbers are computed.

Only numbers that depend on the case and seed go here (no timings, no machine facts), so the
same case and seed give a byte-identical file; run.json carries the rest.

Nulls. log10 of an exact zero is -inf, written null; it is a value (the smallest one) and
takes part in the quantiles. A NaN or +inf from the probe (a sequence whose numbers diverged)
is not a value: the quantiles are over the other (sequence, anchor) pairs, and `nonfinite`
counts per lag how many pairs were left out.

Diverged forward passes. A (sequence, anchor) pair whose forward pass held an inf or NaN in a
state or cache up to the anchor is left out at every lag (diagnostics/probing/core.py) and
counted in its series' `forward_diverged`; a Lyapunov item's exponents are the mean over the
sequences whose trajectory did not diverge, null when none is left.

Estimated series (`probe.estimator: {kind: sketch, rows: r}`). A path the probe estimated
(diagnostics/probing/estimator.py) carries `estimated`: the kind, rows and seed, and whether
the quantiles are of log10 of the Hutchinson estimate (Frobenius) or of a lower bound
(spectral). The Frobenius interval per lag is the median over the pairs of each pair's 95%
interval ends (log10 of the norm), so it says how far a typical pair's estimate may be from
its exact norm; the quantiles across pairs are of the estimates. An exact series has no
`estimated` key, so a case without the sketch writes the file it wrote before.

Sensitivity (`probe.sensitivity: true`). For one anchor t and one sequence, the lag-k component
is the matrix C_k = (d a<t>/d a<t-k>) (∂⁺a<t-k>/∂θ), rows the a-block of the state, columns the
entries of θ (the cell's `recurrent_names`), and its size is the Frobenius norm ||C_k||_F; the
total is ||d a<t>/dθ||_F = ||Σ_k C_k||_F summed over every lag back to the start of the probe
stream (not only the first K); the state's size is ||a<t>||_2 (diagnostics/sensitivity/chain.py).
Pooled over every (anchor, sequence) pair: "rms" = log10 sqrt(mean over the pairs of the squared
norm) -- the root mean square of the closed forms, E[(dh/dλ)²] and E[h²] -- and the quantiles
of the pairs' log10 norms.

Lyapunov `resolved`: per exponent whether it is signal or rounding (a dead relu unit's
direction; diagnostics/probing/lyapunov.py): the regression compares resolved exponents only.
A training item's `final_within` is the fraction of evaluation sequences whose answer is
within the task's `within_tolerance` (adding: 0.04, the 1997 paper's measure), or for
selective_copy and mqar (`sequence_exact`) whose every scored answer is right; null for a
task that states neither.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..documents import Curves, SummaryRow, all_diverged
from ..numfmt import fmt

# the series builder and the document, shared with the training-loop monitor (interop layer)
from ..probing.series import assemble, influence_items, pooled_summary, series_items  # noqa: F401


def lyapunov_item(label: str, checkpoint: int, path: str, run, sequences: int) -> dict:
    """A curves.json `lyapunov` item from a lyapunov.LyapunovRun over `sequences` sequences."""
    item = {"cell": label, "checkpoint": int(checkpoint), "path": path,
            "exponents": run.exponents, "fixed_point": run.fixed_point, "resolved": run.resolved.tolist()}
    if run.diverged:
        item["forward_diverged"] = {"sequences": int(run.diverged), "of": int(sequences)}
    return item


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
            "memoryless_loss": result.baseline, "diverged_at": result.diverged_at,
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


def _pooled_stats(values: np.ndarray) -> tuple[dict, list[int]]:
    """Statistics over the pairs of log10 norms (pairs, K): the log10 root mean square of the
    norms (summed in log space; NaN and +inf left out, -inf an exact zero) and the quantiles."""
    v = np.asarray(values, dtype=float)
    s = pooled_summary(v[None])
    ok = ~(np.isnan(v) | np.isposinf(v))
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = logsumexp(np.where(ok, 2.0 * np.log(10.0) * v, -np.inf), axis=0)
        rms = np.where(n > 0, (lse - np.log(np.maximum(n, 1))) / (2.0 * np.log(10.0)), np.nan)
    stats = {"rms": rms, **{k: s[k] for k in ("median", "q25", "q75", "min", "max")}}
    return stats, [int(c) for c in s["nonfinite"]]


def sensitivity_items(label: str, checkpoint: int, res) -> list[dict]:
    """curves.json `sensitivity` items from a SensitivityResult (see the module docstring)."""
    A, B, K = next(iter(res.log10_lag.values())).shape if res.names else (*res.log10_state.shape, 0)
    out = []
    for name in res.names:
        lag, lag_bad = _pooled_stats(res.log10_lag[name].reshape(A * B, K))
        tot, tot_bad = _pooled_stats(res.log10_total[name].reshape(A * B, 1))
        out.append({"cell": label, "checkpoint": int(checkpoint), "kind": "sensitivity", "parameter": name,
                    "lags": [int(k) for k in res.lags], "pairs": A * B, "log10": lag, "nonfinite": lag_bad,
                    "total": {"log10": {k: v[0] for k, v in tot.items()}, "nonfinite": tot_bad[0]}})
    st, st_bad = _pooled_stats(res.log10_state.reshape(-1, 1))
    out.append({"cell": label, "checkpoint": int(checkpoint), "kind": "state", "parameter": None,
                "pairs": int(res.log10_state.size),
                "total": {"log10": {k: v[0] for k, v in st.items()}, "nonfinite": st_bad[0]}})
    return out


def summary_rows(curves: Curves, cells: list[tuple[str, str]], norm: str) -> list[SummaryRow]:
    """Per cell and checkpoint: the fit of its decay path (a, or state) in `norm`, top Lyapunov
    exponent, training outcome (Curves.summary_rows)."""
    return curves.summary_rows(dict(cells), norm)


def summary_table(rows: list[SummaryRow]) -> str:
    """The terminal table printed at the end of `diag run`. A forward pass that diverged in
    every pair (or Lyapunov sequence) shows "diverged" where its fit (or exponent) would be; a
    training that diverged says so in the solved column of its last probed checkpoint."""
    head = ("cell", "ckpt", "factor", "tau", "horizon", "lyap top", "loss", "memoryless", "solved")
    def tau(r):  # a null tau with factor >= 1: nothing decays, the curve grows by ρ per step
        if r.tau is None and r.factor is not None and r.factor >= 1:
            return "none (grows)" if r.factor == 1 else f"grows x{r.factor:.4g}/step"
        return fmt(r.tau, ".3g")
    last = {}
    for r in rows:
        last[r.cell] = max(last.get(r.cell, r.checkpoint), r.checkpoint)
    def solved(r):
        if r.diverged_at is not None and r.checkpoint == last[r.cell]:
            return f"training diverged at step {r.diverged_at}"
        return "-" if r.solved is None else ("yes" if r.solved else "no")
    body = [(r.cell, str(r.checkpoint),
             "diverged" if all_diverged(r.forward_diverged) else fmt(r.factor, ".4f"), tau(r),
             fmt(r.horizon, "d"),
             "diverged" if all_diverged(r.lyapunov_diverged) else fmt(r.lyapunov_top, "+.4f"),
             fmt(r.final_loss, ".4g"), fmt(r.memoryless_loss, ".4g"), solved(r)) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cols: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(b) for b in body])
