"""The probe's fast path for diagonal Jacobians: sums of logs instead of matrix products.

A path a cell declares diagonal (`Cell.log_diagonal`: the IndRNN, LRU, minGRU, minLSTM and
RG-LRU a-paths, the Mamba and Mamba-2 state paths, the LSTM's and sLSTM's direct memory path
c_direct, the mLSTM's memory) has a k-step product whose
singular values are exp(run_i), run_i = Σ_{s=t-k}^{t-1} ln|d_i(s)| one entry per state
coordinate (see the Cell.log_diagonal docstring, which covers the LRU's 2x2 rotations). So

    spectral norm  = max_i exp(run_i)                -> max_i run_i / ln 10
    Frobenius norm = sqrt(Σ_i exp(2 run_i))          -> ½ logsumexp(2 run) / ln 10

both exact, in log space (10,000 lags neither underflow nor overflow; an exact zero stays
-inf), O(B m) work per lag and O(B m) memory for the running sums.

The logs come from the probe's cached forward pass when it has one (another path needs the
dense chain). When every requested path is diagonal, `Replay` recomputes them instead:
the forward pass keeps the state every L ~ sqrt(T) steps, and the backward walk re-runs one
segment of L steps at a time from its checkpoint and reads its logs in reverse. Memory
O(B S T / L + B m L) instead of O(B S T) for the caches (n = 4,096, 16 sequences, 10,000
steps: ~0.1 GB instead of ~15 GB), for one extra forward pass. The step is deterministic, so
the recomputed logs are bit for bit those of the cached pass, and the sums run in the same
order (lag 1 first) either way. The checkpointing pass also finds, per sequence, the first step
whose state or cache was not finite (`Replay.first`, as cells/unroll.py first_nonfinite finds
it on the cached pass), so the probe leaves out the same diverged pairs on either path.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ..cells.unroll import NonfiniteScan

LN10 = np.log(10.0)


def declared_paths(cell, params, x0, h0=None) -> frozenset:
    """Paths `cell` declares diagonal, read from one step on the first input (B, d)."""
    state = cell.initial_state(x0.shape[0]) if h0 is None else h0
    _, cache = cell.step(params, state, x0)
    return frozenset(cell.log_diagonal(params, cache) or ())


def half_log_sum_exp2(run: np.ndarray, top: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """½ ln Σ_i exp(2 run[b, i]) per row, given top = max_i run[b, i]: the log of the
    Frobenius norm of diag(exp(run)). Shifted by the max, so nothing overflows and the
    result is exact to rounding (absolute error a few eps). Rows whose max is -inf (an exact
    zero product) give -inf, rows with NaN give NaN. `buf` (same shape) is scratch space."""
    finite_top = np.where(np.isfinite(top), top, 0.0)
    np.subtract(run, finite_top[:, None], out=buf)
    buf *= 2.0
    # terms below e^-80 add < 1e-30 to a sum >= 1 (its top term is 1), but left alone they
    # underflow to subnormals, which made exp ~15x slower (n = 4,096, 16 sequences: 1.7 ms
    # against 0.1 ms per lag)
    np.maximum(buf, -80.0, out=buf)
    with np.errstate(over="ignore", divide="ignore"):   # only in rows whose top is not finite
        np.exp(buf, out=buf)
        out = 0.5 * np.log(buf.sum(axis=1)) + finite_top
    out[np.isneginf(top)] = -np.inf
    out[np.isnan(top)] = np.nan
    return out


class KahanSum:
    """A running sum with Kahan's compensation. A plain sum of K equal terms x errs by up to
    ~K² eps |x| / 2: LRU r = 0.3 read 1.1e-9 decades off k log10 r at k = 10,000; compensated,
    the error stays a few eps |sum|. An infinite or NaN entry (an exact zero, a diverged
    cell) keeps its value and drops its compensation, which would be NaN."""

    def __init__(self, first: np.ndarray):
        self.value = np.array(first, dtype=float)
        self.comp = np.zeros_like(self.value)
        self._y, self._t = np.empty_like(self.value), np.empty_like(self.value)
        self.scratch = np.empty_like(self.value)      # for the caller's norms

    def add(self, v: np.ndarray) -> np.ndarray:
        y, t = self._y, self._t
        np.subtract(v, self.comp, out=y)
        np.add(self.value, y, out=t)
        with np.errstate(invalid="ignore"):
            np.subtract(t, self.value, out=self.comp)       # what the addition kept of y ...
            self.comp -= y                                   # ... minus y: the part it lost
        self.comp[~np.isfinite(t)] = 0.0
        self.value, self._t = t, self.value
        return self.value


class Chain:
    """Running sums of ln|d| over lags k = 1, 2, ... (one dict {path: (B, m)} per lag, lag 1
    first, fed by `add`) and their log10 norms, written into out[(path, norm)][a_i, :, k - 1].
    Paths a cell gives one array for (the LRU's a and state) are summed once and their rows
    copied. A dict may hold other paths (another fast path's): only `paths` are read."""

    def __init__(self, paths, norms, out, a_i):
        self.paths, self.norms, self.out, self.a_i = tuple(paths), norms, out, a_i
        self.run, self.same = {}, {}

    def add(self, k: int, lg: dict) -> None:
        paths, out, a_i, run = self.paths, self.out, self.a_i, self.run
        if k == 1:   # path -> the first path sharing its array
            self.same = {p: next(q for q in paths if lg[q] is lg[p]) for p in paths}
        for p in paths:
            q = self.same[p]
            if q != p:
                if lg[p] is not lg[q]:
                    raise ValueError(f"log_diagonal: paths {q} and {p} shared one array at lag 1 but not at lag {k}")
                for norm in self.norms:
                    out[(p, norm)][a_i, :, k - 1] = out[(q, norm)][a_i, :, k - 1]
                continue
            v = np.asarray(lg[p], dtype=float)
            if p not in run:
                run[p] = KahanSum(v)
                r = run[p].value
            else:
                r = run[p].add(v)
            top = r.max(axis=1)       # σ_max = largest |entry| of the diagonal product
            if "spectral" in self.norms:
                out[(p, "spectral")][a_i, :, k - 1] = top / LN10
            if "frobenius" in self.norms:
                out[(p, "frobenius")][a_i, :, k - 1] = half_log_sum_exp2(r, top, run[p].scratch) / LN10


def chain(logs: Iterator[dict], K: int, paths, norms, out, a_i, tick=None) -> None:
    """Chain's sums over lags 1..K of `logs`; `tick(1)`, if given, is called after each lag."""
    c = Chain(paths, norms, out, a_i)
    for k, lg in zip(range(1, K + 1), logs):
        if tick is not None:
            tick(1)
        c.add(k, lg)


def read(cell, params, cache, paths, kron=()) -> dict:
    """One step's structured factors: the logs of the diagonal `paths` (log_diagonal) and the
    factors of the Kronecker paths `kron` (kron_factors, diagnostics/probing/kron.py)."""
    out = {}
    if paths:
        out.update(cell.log_diagonal(params, cache) or {})
    if kron:
        out.update(cell.kron_factors(params, cache) or {})
    return out


def from_caches(cell, params, caches, t: int, K: int, paths=True, kron=()) -> Iterator[dict]:
    """The logs of the diagonal `paths` (and the Kronecker factors of `kron`) of lags 1..K at
    anchor t from the probe's cached forward pass."""
    for k in range(1, K + 1):
        yield read(cell, params, caches[t - k], paths, kron)


class Replay:
    """The logs of lags 1..K at any anchor, recomputed segment by segment from checkpoints
    of the state (see the module docstring). `stop`: the last step any anchor needs.
    `first`: (B,) per sequence the first step in 1..stop whose state or cache held an inf or
    NaN, stop + 1 where none did."""

    def __init__(self, cell, params, xs, h0, stop: int, paths, tick=None, kron=()):
        """`tick(n)`: told of the forward pass's steps as they are done (see unroll). `kron`:
        Kronecker paths whose factors are replayed too (diagnostics/probing/kron.py)."""
        self.cell, self.params, self.xs, self.paths, self.kron = cell, params, xs, tuple(paths), tuple(kron)
        self.L = max(1, math.isqrt(max(stop - 1, 0)) + 1)     # ceil(sqrt(stop)), >= 1
        B = xs.shape[1]
        state = cell.initial_state(B) if h0 is None else h0
        self.checkpoints = []                                   # state before step j L
        scan = NonfiniteScan(B, stop)
        for s in range(stop):
            if s % self.L == 0:
                self.checkpoints.append(state)
                if tick is not None and s:
                    tick(self.L)
            state, cache = cell.step(params, state, xs[s])
            scan.see(s + 1, (state, cache))
        if tick is not None and stop:
            tick(stop - (len(self.checkpoints) - 1) * self.L)
        self.first = scan.first

    def _segment(self, j: int, end: int) -> list[dict]:
        """Logs of steps j L .. end - 1, re-run from the checkpoint at j L."""
        state, logs = self.checkpoints[j], []
        for s in range(j * self.L, end):
            state, cache = self.cell.step(self.params, state, self.xs[s])
            lg = read(self.cell, self.params, cache, self.paths, self.kron)
            logs.append({p: lg[p] for p in self.paths + self.kron})       # the cache itself is dropped
        return logs

    def logs(self, t: int, K: int) -> Iterator[dict]:
        """Lag k reads step t - k (cache index), for k = 1..K: steps t-1 down to t-K."""
        first = t - K
        for j in range((t - 1) // self.L, first // self.L - 1, -1):
            seg = self._segment(j, min((j + 1) * self.L, t))
            for s in range(len(seg) - 1, -1, -1):
                if j * self.L + s < first:
                    return
                yield seg[s]
