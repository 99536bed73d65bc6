"""The state's sensitivity to the recurrent parameters, split by lag (Zucchet & Orvieto 2024).

    res = state_sensitivity(cell, params, xs, lags=K, anchors=[t, ...])
    res.log10_lag[name]     # (A, B, K)  log10 ||(d a<t>/d a<t-k>) (∂⁺a<t-k>/∂θ)||_F, k = 0..K-1
    res.log10_total[name]   # (A, B)     log10 ||d a<t>/dθ||_F
    res.total[name]         # (A, B, R, *θ.shape)  d a<t>/dθ itself (R = rows of the a-block)
    res.log10_state         # (A, B)     log10 ||a<t>||_2

The derivative of the state (not of a loss) splits over lags exactly as the loss gradient
does (REFERENCES item 1): d a<t>/dθ = Σ_{k=0}^{t-1} (d a<t>/d a<t-k>) (∂⁺a<t-k>/∂θ), ∂⁺ the
immediate dependence of one step (a<t> is the cell's output block, Cell.output_block: the
output y<t> of a cell that does not feed it back). The walk carries the R identity rows of
that block, M_k = d a<t>/d state<t-k> (B, R, S), back one step at a time with `cell.vjp` and files each
step's immediate part `cell.param_vjp(M_k)` under its lag k. The total sums every lag back to
the start of the stream (the initial state does not depend on θ), so it is d a<t>/dθ itself,
not the first K lags only; the per-lag norms are kept for k < K. Cost per anchor t: t steps
of vjp and param_vjp, memory B R |θ| for the sum (small cells; see budget.py).

Log space. After every step each sequence's M is divided by its largest |entry| and the
natural log of that scale accumulated, so products of thousands of Jacobians neither
underflow nor overflow (λ = 0.5 reaches 1e-3010 at lag 10,000 and reads -3010 here). The
total is a sum of terms of different scales: it is kept as a mantissa times exp(the largest
scale so far), one per sequence. An exact zero (a dead ReLU) is -inf, as in the probe.

Divergence. As in the probe (diagnostics/probing/core.py), an (anchor t, sequence) pair whose
forward pass held an inf or NaN in a state or cache of steps 1..t is not a number: its
per-lag norms, total, d a<t>/dθ and state size are NaN (curves.json counts it in
`nonfinite`), not the exact zeros a relu's mask of NaN would make of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cells.unroll import first_nonfinite, unroll
from ..probing.parallel import Tally

LN10 = np.log(10.0)


@dataclass
class SensitivityResult:
    lags: np.ndarray                     # (K,) 0..K-1
    anchors: np.ndarray                  # (A,)
    names: tuple[str, ...]               # the recurrent parameters, cell.recurrent_names
    log10_lag: dict = field(default_factory=dict)     # name -> (A, B, K)
    log10_total: dict = field(default_factory=dict)   # name -> (A, B)
    total: dict = field(default_factory=dict)         # name -> (A, B, R, *shape)
    log10_state: np.ndarray | None = None             # (A, B)


def log10_norms(c: np.ndarray) -> np.ndarray:
    """log10 of the Frobenius norm of each c[b] (all axes but the first), scaled by the
    largest entry so that neither the squares nor their sum under- or overflow."""
    flat = np.abs(c.reshape(c.shape[0], -1))
    big = flat.max(axis=1)
    safe = np.where(big > 0, big, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(big) + 0.5 * np.log10(np.sum((flat / safe[:, None]) ** 2, axis=1))


def _check(cell, xs, lags, anchors):
    xs = np.asarray(xs)
    if xs.ndim != 3 or xs.shape[2] != cell.input_size:
        raise ValueError(f"xs: must have shape (T, B, {cell.input_size}), got {xs.shape}")
    T = xs.shape[0]
    anchors = np.array([T] if anchors is None else list(anchors), dtype=int).ravel()
    if anchors.size == 0 or anchors.min() < 1 or anchors.max() > T:
        raise ValueError(f"anchors: must be steps in 1..{T}, got {anchors.tolist()}")
    if not isinstance(lags, (int, np.integer)) or isinstance(lags, bool) or not 1 <= lags <= anchors.min():
        raise ValueError(f"lags: must be an integer in 1..{int(anchors.min())} (the smallest anchor), got {lags!r}")
    return xs, anchors


def walk(cell, params, caches, t: int, names, B: int):
    """Yield (k, {name: C_k mantissa (B, R, ...)}, ln scale (B,)) for k = 0..t-1, where the
    lag-k component is C_k exp(scale): (d a<t>/d a<t-k>) (∂⁺a<t-k>/∂θ) per sequence."""
    rows = np.arange(cell.state_size)[cell.blocks[cell.output_block]]
    M = np.zeros((B, rows.size, cell.state_size))
    M[:, np.arange(rows.size), rows] = 1.0
    log_scale = np.zeros(B)
    for k in range(t):
        cache = caches[t - 1 - k]
        yield k, cell.param_vjp(params, cache, M, names), log_scale
        if k == t - 1:
            break
        M = cell.vjp(params, cache, M)
        big = np.abs(M.reshape(B, -1)).max(axis=1)
        with np.errstate(divide="ignore"):
            log_scale = log_scale + np.log(big)      # a zero product stays -inf from here on
        M = M / np.where(big > 0, big, 1.0)[:, None, None]


def _accumulate(acc, acc_log, comps, log_scale):
    """acc exp(acc_log) += comps exp(log_scale) per sequence; acc_log is the largest scale so
    far (it starts at 0, the scale of lag 0), so every added factor is at most 1."""
    up = log_scale > acc_log
    if up.any():                               # rebase those sequences on the larger scale
        new = np.where(up, log_scale, acc_log)
        f = np.exp(acc_log - new)
        for k in acc:
            acc[k] *= f.reshape((-1,) + (1,) * (acc[k].ndim - 1))
        acc_log = new
    f = np.exp(log_scale - acc_log)           # 0 for an exact zero (-inf); NaN stays NaN
    for k, c in comps.items():
        acc[k] += c * f.reshape((-1,) + (1,) * (c.ndim - 1))
    return acc_log


def state_sensitivity(cell, params, xs, lags: int, anchors=None, names=None, progress=None) -> SensitivityResult:
    """Per-lag components and total of d a<t>/dθ for θ in `names` (default the cell's
    recurrent parameters), at each anchor t, for every sequence of xs (T, B, d).
    `progress(done, total)`, if given, is told of the forward steps and the walks' lags."""
    xs, anchors = _check(cell, xs, lags, anchors)
    names = tuple(cell.recurrent_names(params) if names is None else names)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"names: must be parameters of this {cell.kind} cell ({', '.join(sorted(params))}), got {unknown}")
    # the work: the forward pass to the last anchor, then a walk of t lags per anchor t
    tally = None if progress is None else Tally(1, int(anchors.max()) + (int(anchors.sum()) if names else 0), progress)
    tick = None if tally is None else tally.adder(0)
    # a diverging forward pass overflows: detected (first_nonfinite), not reported again by numpy
    with np.errstate(over="ignore", invalid="ignore"):
        trace = unroll(cell, params, xs[:int(anchors.max())], tick=tick)
        first = first_nonfinite(trace)
        res = _walks(cell, params, trace, anchors, names, int(lags), tick)
    if tally is not None:
        tally.poll()
    dead = first[None, :] <= anchors[:, None]            # (A, B) pairs whose forward pass diverged
    for d in (*res.log10_lag.values(), *res.log10_total.values(), *res.total.values(), res.log10_state):
        d[dead] = np.nan
    return res


def _walks(cell, params, trace, anchors, names, K: int, tick=None) -> SensitivityResult:
    """state_sensitivity's walks back from every anchor along a computed forward pass; `tick(1)`
    per lag walked."""
    A, B = anchors.size, trace.states.shape[1]
    res = SensitivityResult(np.arange(K), anchors, names)
    lag = {k: np.empty((A, B, K)) for k in names}
    tot = {k: np.empty((A, B)) for k in names}
    total = {k: [] for k in names}
    a_rows = cell.blocks[cell.output_block]
    res.log10_state = np.stack([log10_norms(trace.states[t - 1][:, a_rows]) for t in anchors])
    for ai, t in enumerate(anchors if names else ()):    # no recurrent parameter: the state only
        acc, acc_log = None, np.zeros(B)
        for k, comps, log_scale in walk(cell, params, trace.caches, int(t), names, B):
            if acc is None:
                acc = {n: np.zeros_like(c, dtype=float) for n, c in comps.items()}
            if k < K:
                for n in names:
                    lag[n][ai, :, k] = log10_norms(comps[n]) + log_scale / LN10
            acc_log = _accumulate(acc, acc_log, comps, log_scale)
            if tick is not None:
                tick(1)
        for n in names:
            tot[n][ai] = log10_norms(acc[n]) + acc_log / LN10
            # may overflow where the log-space total does not (the caller ignores overflow)
            total[n].append(acc[n] * np.exp(acc_log).reshape((-1,) + (1,) * (acc[n].ndim - 1)))
    res.log10_lag, res.log10_total = lag, tot
    res.total = {n: np.stack(v) for n, v in total.items()}
    return res
