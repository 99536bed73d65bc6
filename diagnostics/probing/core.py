"""Jacobian-norm curves: log10 ||d state<t>/d state<t-k>|| for every lag k, per sequence.

    res = probe(cell, params, xs, lags=K, anchors=[t, ...], paths=("a", "c"), norms=("spectral",))
    res.log10[("a", "spectral")]      # (A, B, K): anchor, sequence, lag 1..K
    res.summary("a", "spectral")      # median, q25, q75, min, max across sequences, each (K,)

Method. The forward pass keeps one cache per step (O(B T n) memory). For an anchor t the
backward chain holds only the rows it needs, M_k = E d state<t>/d state<t-k> (B, r, S), and
advances one lag with `cell.vjp`: M_{k+1} = M_k J_{t-k}, one GEMM over all B r rows. No dense
step Jacobian is ever formed. After every lag each sequence's M is divided by its largest
|entry| (by the LSTM's vjp during the next lag, see _Lag) and log10 of that scale is
accumulated, so 10,000 lags at factor 0.5 read -3010, not -inf. An exactly zero product
gives scale 0 and stays -inf. The batch may be split over worker processes or threads
(`workers`, see diagnostics/probing/parallel.py).

Stages. probe() checks its arguments once into a frozen ProbeRequest (probe_request: the
inputs, K, anchors, paths, norms, h0, and what follows from them: which paths take the
diagonal fast path, which rows the dense chain carries and where each path's block sits in
them); every stage after reads that request: the split of the batch (_probe_batch), each
part's forward pass and anchors (_probe, on request.part(s)), the chain from one anchor
(jacobian_products, lag by lag) and the norms written from it (_Norms).

Paths: "a" and "c" are blocks of the product of full-state Jacobians (total derivatives, every
path through the cell included); "state" is the whole product, or for a cell whose output is
not fed back its block "state" (Cell.path_block); "c_direct" is the LSTM's direct memory path
Π diag(Γ_f), from sums of ln Γ_f, exact in log space (the mLSTM's "memory" likewise).

Diagonal paths. A path the cell declares diagonal (`Cell.log_diagonal`: c_direct, and the
a-path of the IndRNN, LRU, minGRU and minLSTM) takes the fast path of diagnostics/probing/diagonal.py
instead of the chain: running sums of ln|d| per coordinate, O(B n) per lag, norms exact.
Kronecker paths. A path the cell declares through `Cell.kron_factors` (Gated DeltaNet's state:
I_{d_v} ⊗ α (I - β k k^T) per head) takes diagnostics/probing/kron.py instead: the m x m factors
chained per head in log space, O(B H m^3) per lag, the (H r m)^2 matrix never formed.
`diagonal=False` sends such paths (all but the direct paths c_direct and memory, which have no
dense form) through the dense chain instead; the two agree to rounding (tested).

Estimated norms. estimator="sketch" (or "auto" for a block at least estimator.AUTO_WIDTH
wide) carries, per dense path, q = REFINE + r rows of the block instead of its identity, in
the same chain after the exact rows, with the same renormalisation: the Frobenius norm is a
Hutchinson estimate with an interval (ProbeResult.interval, rel_stderr) and the spectral norm a
lower bound (ProbeResult.estimated says which series are estimated and how); see
diagnostics/probing/estimator.py.

Divergence. A (sequence, anchor t) pair whose forward pass held an inf or NaN in any state
or cache of steps 1..t (cells/unroll.py first_nonfinite: every forward number read once) is a
diverged pair: its log10 norms are NaN at every lag, so the quantiles leave it out and
curves.json counts it in `nonfinite` at every lag, and `ProbeResult.diverged` marks it. Every
lag, not only those whose product reaches back to the overflow: the Jacobians after it are
computed from non-finite states and can look sane (a relu's mask of NaN is 0, a finite zero
matrix), and even lag 1 at t reads the cache of step t. A chain that turns non-finite on its
own (a cell's vjp giving NaN from finite caches) is NaN from that lag on, as before. The
overflow this expects is not reported by numpy as RuntimeWarnings: it is detected instead.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from ..cells.unroll import first_nonfinite, unroll
from . import diagonal as diag
from . import estimator as est
from . import kron
from .matnorms import SpectralTracker, log_summary
from .parallel import Tally, can_fork, chunks, map_chunks, resolve_workers

NORMS = ("spectral", "frobenius")
# below this many hidden units, threads and threaded BLAS lose (see probe_workers)
THREADS_MIN_HIDDEN = 96
# batch x lags x anchors x state size from which forked workers repay their start on the
# diagonal fast path (~70 ns per unit on one core): 2 workers lost below ~1e7 and went either
# way at 5e7-7e7 on 2 cores (IndRNN tanh, 16 sequences)
DIAGONAL_WORTH = 1e8
# a sketched chain's batch x rows x S^2 below which one BLAS thread wins: the exact chain's
# THREADS_MIN_HIDDEN at 16 sequences (16 x 192 x 192^2, the LSTM at n = 96)
SKETCH_THREADS_WORK = 1e8


@dataclass
class ProbeResult:
    lags: np.ndarray                      # (K,) ints 1..K
    anchors: np.ndarray                   # (A,) ints
    paths: tuple[str, ...]
    norms: tuple[str, ...]
    log10: dict = field(default_factory=dict)   # (path, norm) -> (A, B, K)
    # anchor -> {blocks: (batched power iterations, sequence-lags solved by the eigensolver)};
    # with several workers, the most passes any worker made and the total of eigensolves
    stats: dict = field(default_factory=dict)
    # (A, B) bools: the (anchor, sequence) pairs whose forward pass diverged (NaN at every lag;
    # see the module docstring); None from code that predates it
    diverged: np.ndarray | None = None
    # the estimated series (see "Estimated norms" in the module docstring), by (path, norm):
    # how each was measured, {"kind": "sketch", "rows", "seed", "value": "hutchinson" (Frobenius)
    # or "lower_bound" (spectral)}; an exact series is absent
    estimated: dict = field(default_factory=dict)
    # (path, "frobenius") -> (A, B, K, 2): log10 of the ends of the norm's LEVEL interval
    interval: dict = field(default_factory=dict)
    # (path, "frobenius") -> (A, B, K): the standard error of the squared norm's estimate over it
    rel_stderr: dict = field(default_factory=dict)

    def summary(self, path: str, norm: str, anchor_index: int = -1) -> dict[str, np.ndarray]:
        """Quantiles across sequences at one anchor; -inf (exactly zero) is a valid value, NaN
        (a diverged sequence) is left out (see matnorms.log_quantile)."""
        key = (path, norm)
        if key not in self.log10:
            raise KeyError(f"path/norm: {path!r}/{norm!r} was not probed; have {sorted(self.log10)}")
        v = self.log10[key][anchor_index]            # (B, K)
        return log_summary(v)


@dataclass(frozen=True, eq=False)
class ProbeRequest:
    """One probe, validated: probe()'s arguments and what follows from them, built once by
    probe_request() and read by every stage after it (the batch split, each part's forward
    pass, chains and fast path). Frozen: no stage rebinds what another reads (the arrays are
    the caller's and are not copied)."""
    cell: object
    params: dict
    xs: np.ndarray                # (T, B, d)
    lags: int                     # K: lags 1..K at every anchor
    anchors: np.ndarray           # (A,) steps in 1..T
    paths: tuple[str, ...]
    norms: tuple[str, ...]
    h0: np.ndarray | None         # (B, S); None: the cell's initial state
    fast: tuple[str, ...]         # the paths that take the diagonal fast path (diagonal.py)
    kron: tuple[str, ...]         # the paths that take the Kronecker fast path (kron.py)
    rows: np.ndarray | None       # rows of the product the exact chain carries; None: no dense path
    # per dense path: (path, its rows in the chain's M (a slice of rows' positions), its
    # columns in the state); the exact paths' rows first, then each sketched path's q rows
    layout: tuple[tuple[str, slice, slice], ...]
    estimator: est.Estimator = est.Estimator()
    sketched: tuple[str, ...] = ()   # the dense paths the sketch estimates (estimator.py)
    first: int = 0                # index in the whole batch of this part's first sequence

    @property
    def batch(self) -> int:
        return self.xs.shape[1]

    @property
    def chain_rows(self) -> int:
        """Rows of the chain's M: the exact rows, then q = REFINE + r per sketched path."""
        return (0 if self.rows is None else self.rows.size) + len(self.sketched) * (est.REFINE + self.estimator.rows)

    def part(self, s: slice) -> ProbeRequest:
        """The same probe of sequences s alone (one worker's chunk)."""
        return replace(self, xs=self.xs[:, s], h0=None if self.h0 is None else self.h0[s], first=self.first + s.start)


def probe(cell, params, xs, *, lags=None, anchors=None, paths=None, norms=NORMS, h0=None, workers=None,
          diagonal=True, estimator="exact", rows=est.ROWS, seed=0, progress=None) -> ProbeResult:
    """log10 Jacobian norms of `cell` along xs (T, B, d). See the module docstring.

    lags: K, an int in 1..min(anchors) (default min(anchors)); lag k at anchor t is
    d state<t>/d state<t-k>, state<0> being the initial state (h0 or zeros).
    anchors: steps t in 1..T (default [T]). paths: default all of cell.paths.
    workers: processes (threads where forking is unsafe), each probing a contiguous chunk of
    the batch with single-threaded BLAS (see diagnostics/probing/parallel.py). None: one per core for
    a built-in cell (a pure step: `parallel_safe`) when the probe is big enough to repay
    starting them (see probe_workers), else 1. The numbers agree to rounding whatever the
    count, and repeat bit for bit for a given count.
    diagonal: paths the cell declares diagonal take the log-space fast path (see the module
    docstring); False forces the dense chain for all of them but c_direct.
    estimator: "exact" (every row of the chain), "sketch" (r = `rows` random rows per dense
    path, drawn from `seed`: estimated Frobenius norms with an interval and a spectral lower
    bound, see probing/estimator.py) or "auto" (the sketch for a path block at least
    estimator.AUTO_WIDTH wide). The diagonal fast path and c_direct stay exact, and so does a
    path no wider than the sketch's rows, or one whose block the exact rows of other paths
    already cover (an LSTM's state when a and c are exact).
    progress: progress(done, total), for a progress bar, in the caller's thread every ~0.2 s
    and at the end; units are forward steps plus lags (over anchors), the slowest chunk's.
    """
    req = probe_request(cell, params, xs, lags=lags, anchors=anchors, paths=paths, norms=norms,
                        h0=h0, diagonal=diagonal, estimator=estimator, rows=rows, seed=seed)
    return _probe_batch(req, workers, progress)


def probe_request(cell, params, xs, *, lags=None, anchors=None, paths=None, norms=NORMS, h0=None,
                  diagonal=True, estimator="exact", rows=est.ROWS, seed=0) -> ProbeRequest:
    """probe()'s arguments checked (a ValueError naming the argument otherwise) and resolved
    into the request every stage of the probe reads (see probe for their meaning)."""
    xs = _inputs(cell, xs)
    anchors, K = _anchors_and_lags(xs.shape[0], anchors, lags)
    paths = _paths(cell, paths)
    norms = tuple([norms] if isinstance(norms, str) else norms)
    if not norms or any(n not in NORMS for n in norms):
        raise ValueError(f"norms: must be among {', '.join(NORMS)}, got {list(norms)}")
    h0 = _initial_state(cell, h0, xs.shape[1])
    if not isinstance(diagonal, bool):
        raise ValueError(f"diagonal: must be true or false, got {diagonal!r}")
    fast, kr = _fast_paths(cell, params, xs, paths, h0, diagonal)
    how = est.estimator(estimator, rows, seed)
    rows, layout, sketched = _row_layout(cell, [p for p in paths if p not in fast and p not in kr], how)
    return ProbeRequest(cell, params, xs, K, anchors, paths, norms, h0, fast, kr, rows, layout, how, sketched)


def _inputs(cell, xs) -> np.ndarray:
    xs = np.asarray(xs)
    if xs.ndim != 3 or xs.shape[2] != cell.input_size:
        raise ValueError(f"xs: must have shape (T, B, {cell.input_size}), got {xs.shape}")
    if xs.shape[0] < 1 or xs.shape[1] < 1:
        raise ValueError(f"xs: need at least one step and one sequence, got shape {xs.shape}")
    return xs


def _anchors_and_lags(T: int, anchors, lags) -> tuple[np.ndarray, int]:
    anchors = np.array([T] if anchors is None else list(anchors), dtype=int).ravel()
    if anchors.size == 0 or anchors.min() < 1 or anchors.max() > T:
        raise ValueError(f"anchors: must be steps in 1..{T}, got {anchors.tolist()}")
    K = int(anchors.min()) if lags is None else lags
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not 1 <= K <= anchors.min():
        raise ValueError(f"lags: must be an integer in 1..{int(anchors.min())} (the smallest anchor), got {lags!r}")
    return anchors, int(K)


def _paths(cell, paths) -> tuple[str, ...]:
    paths = tuple(cell.paths if paths is None else ([paths] if isinstance(paths, str) else paths))
    bad = [p for p in paths if p not in cell.paths]
    if not paths or bad:
        raise ValueError(f"paths: must be among {', '.join(cell.paths)} for {cell.kind}, got {list(paths)}")
    return paths


def _initial_state(cell, h0, B: int) -> np.ndarray | None:
    if h0 is None:
        return None
    h0 = np.asarray(h0, dtype=float)
    if h0.shape != (B, cell.state_size):
        raise ValueError(f"h0: must have shape ({B}, {cell.state_size}), got {h0.shape}")
    return h0


def _fast_paths(cell, params, xs, paths, h0, diagonal) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paths that take the diagonal fast path and those that take the Kronecker one; the
    others take the dense chain. A direct path (c_direct, memory) has no dense form."""
    direct = getattr(cell, "direct_paths", {"c_direct": "c"})
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging cell's first step: the probe detects it
        declared = diag.declared_paths(cell, params, xs[0], h0)
        structured = kron.kron_paths(cell, params, xs[0], h0) if hasattr(cell, "kron_factors") else frozenset()
    for p in paths:
        if p in direct and p not in declared and p not in structured:
            raise ValueError(f"paths: {p} needs a cell with a memory path; {cell.kind} has none")
    keep = lambda p, have: p in have and (diagonal or p in direct)   # noqa: E731
    return tuple(p for p in paths if keep(p, declared)), tuple(p for p in paths if keep(p, structured))


def _row_layout(cell, dense, how: est.Estimator) -> tuple[np.ndarray | None, tuple, tuple[str, ...]]:
    """Rows of the product the exact chain must carry, where each dense path's block sits in
    M (the exact rows first, then q sketch rows per estimated path), and which are estimated."""
    S = cell.state_size
    if not dense:
        return None, (), ()
    cols = {p: _block(cell, p) for p in dense}
    wide = [p for p in dense if how.sketches(len(range(S)[cols[p]]))]
    # the blocks asked for: a stacked cell's top-layer a and c are not all of its state, nor is
    # the state block of a cell whose output is not fed back
    rows = np.unique(np.concatenate([np.arange(S)[cols[p]] for p in dense if p not in wide] + [np.arange(0)]))
    # a wide block whose rows the exact chain carries anyway (an LSTM's state when a and c are
    # exact) is read from them: exact, and q rows fewer
    sketched = tuple(p for p in wide if not np.isin(np.arange(S)[cols[p]], rows).all())
    exact = [p for p in dense if p not in sketched]
    pos = {int(r): i for i, r in enumerate(rows)}
    layout = []
    for p in exact:
        idx = np.arange(S)[cols[p]]
        layout.append((p, slice(pos[int(idx[0])], pos[int(idx[-1])] + 1), cols[p]))
    q, at = est.REFINE + how.rows, rows.size
    for p in sketched:
        layout.append((p, slice(at, at + q), cols[p]))
        at += q
    return rows, tuple(layout), sketched


def _block(cell, p: str) -> slice:
    """The columns of the state path p's norms are of (Cell.path_block; a cell not built on
    Cell: its block, the whole state for "state")."""
    if hasattr(cell, "path_block"):
        return cell.path_block(p)
    return slice(0, cell.state_size) if p == "state" else cell.blocks[p]


def _probe_batch(req: ProbeRequest, workers, progress=None) -> ProbeResult:
    """The probe of a validated request: the batch split over workers, the parts joined."""
    cell, B, K, A = req.cell, req.batch, req.lags, req.anchors.size
    parts = chunks(B, probe_workers(cell, B, K, A, workers, diagonal_only=not req.layout, rows=req.chain_rows))
    # a small built-in cell is also too small for threaded BLAS (LSTM n = 64, 16 sequences,
    # 300 lags: 1.64 s with 2 BLAS threads, 1.03 s with 1)
    small = (workers is None and getattr(cell, "parallel_safe", False) and len(parts) == 1
             and (_hidden(cell) < THREADS_MIN_HIDDEN if not req.sketched
                  else B * req.chain_rows * cell.state_size ** 2 < SKETCH_THREADS_WORK))
    # a part's work: the forward pass (the stream for the chain's caches, up to the last
    # anchor for the diagonal replay), then K lags per anchor
    forward = req.xs.shape[0] if req.layout else int(req.anchors.max())
    tally = None if progress is None else Tally(len(parts), forward + A * K, progress)
    runs = map_chunks(lambda s: _probe(req.part(s), None if tally is None else tally.adder(parts.index(s))),
                      parts, one_blas_thread=small, poll=None if tally is None else tally.poll)
    if tally is not None:
        tally.poll()
    out, stats, diverged = _join(runs)
    log10 = {key: v for key, v in out.items() if len(key) == 2}
    estimated = {(p, n): {**req.estimator.document(), "value": "hutchinson" if n == "frobenius" else "lower_bound"}
                 for p in req.sketched for n in req.norms}
    interval = {(p, n): np.stack([out[(p, n, "lo")], out[(p, n, "hi")]], axis=-1)
                for p, n in estimated if n == "frobenius"}
    rel = {(p, n): out[(p, n, "rel_stderr")] for p, n in interval}
    return ProbeResult(np.arange(1, K + 1), req.anchors, req.paths, req.norms, log10, stats, diverged,
                       estimated, interval, rel)


def _join(runs: list) -> tuple[dict, dict, np.ndarray]:
    """The parts' (log10 arrays, counters, diverged pairs) as one batch's."""
    if len(runs) == 1:
        return runs[0]
    # sequences are independent: outputs join along the batch axis
    out = {key: np.concatenate([o[key] for o, _, _ in runs], axis=1) for key in runs[0][0]}
    diverged = np.concatenate([d for _, _, d in runs], axis=1)
    # parts iterate side by side: the slowest one's passes, every part's eigensolves
    stats = {t: {name: (max(st[t][name][0] for _, st, _ in runs), sum(st[t][name][1] for _, st, _ in runs))
                 for name in counters} for t, counters in runs[0][1].items()}
    return out, stats, diverged


def probe_workers(cell, batch: int, lags: int, anchors: int = 1, workers=None, *,
                  diagonal_only: bool = False, rows: int | None = None) -> int:
    """The number of workers probe() uses (see probe). By default, more than one only for a
    cell that declares `parallel_safe` and a probe worth it: forked processes cost ~60 ms to
    start and break even at about 5e7 for batch x lags x anchors x rows x S^2 (2 workers
    against 1 on 2 cores; `rows` the chain's, default S, the exact chain of the whole state);
    threads, where forking is unsafe, lose to the GIL below ~96 hidden units.
    `diagonal_only`: every path takes the diagonal fast path, whose work is two forward
    passes and O(S) per sequence-lag, so the size that repays workers is measured in
    batch x lags x anchors x S (see DIAGONAL_WORTH)."""
    if workers is not None or not getattr(cell, "parallel_safe", False):
        return resolve_workers(1 if workers is None else workers, batch)
    S = cell.state_size
    if diagonal_only:
        worth = can_fork() and batch * lags * anchors * S >= DIAGONAL_WORTH
    elif can_fork():
        worth = batch * lags * anchors * (S if rows is None else rows) * S ** 2 >= 1e8
    else:
        worth = _hidden(cell) >= THREADS_MIN_HIDDEN
    return resolve_workers(None, batch, worth)


def _hidden(cell) -> int:
    return getattr(cell, "hidden", cell.state_size)


def _probe(req: ProbeRequest, tick=None) -> tuple[dict, dict, np.ndarray]:
    """The probe of one part of the batch: forward, then the chains; (log10 arrays, counters,
    diverged pairs (A, B)). `tick(n)`: told of forward steps and lags as they are done (the
    dense chain's lags, else the fast path's)."""
    A, B, K = req.anchors.size, req.batch, req.lags
    out = {(p, n): np.empty((A, B, K)) for p in req.paths for n in req.norms}
    if "frobenius" in req.norms:   # an estimated Frobenius norm's interval and standard error
        out.update({(p, "frobenius", part): np.empty((A, B, K)) for p in req.sketched
                    for part in ("lo", "hi", "rel_stderr")})
    diverged = np.zeros((A, B), dtype=bool)
    stats = {}
    # overflow and inf - inf are what a diverging forward pass does: detected (first_nonfinite,
    # the chain's per-lag check), so not reported a second time by numpy
    with np.errstate(over="ignore", invalid="ignore"):
        if not req.layout:   # nothing needs the caches: replay the logs from state checkpoints
            replay = diag.Replay(req.cell, req.params, req.xs, req.h0, int(req.anchors.max()), req.fast, tick,
                                 kron=req.kron)
            first = replay.first
        else:
            trace = unroll(req.cell, req.params, req.xs, req.h0, tick)
            caches, first = trace.caches, first_nonfinite(trace)
        for a_i, t in enumerate(req.anchors.tolist()):
            if req.layout:
                stats[t] = _chain(req, caches, t, out, a_i, tick)
            if req.fast or req.kron:
                logs = (replay.logs(t, K) if not req.layout else
                        diag.from_caches(req.cell, req.params, caches, t, K, bool(req.fast), req.kron))
                _fast_chains(req, logs, out, a_i, tick if not req.layout else None)
            diverged[a_i] = first <= t
            for v in out.values():   # not a number at any lag (see the module docstring)
                v[a_i, diverged[a_i]] = np.nan
    return out, stats, diverged


def _fast_chains(req: ProbeRequest, logs, out: dict, a_i: int, tick=None) -> None:
    """The diagonal and Kronecker fast paths of one anchor, from one pass over its lags' logs
    and factors (a replay recomputes them, so they are read once); `tick(1)` after each lag."""
    chains = ([diag.Chain(req.fast, req.norms, out, a_i)] if req.fast else []) + \
             ([kron.Chain(req.cell, req.kron, req.norms, out, a_i)] if req.kron else [])
    for k, lg in zip(range(1, req.lags + 1), logs):
        if tick is not None:
            tick(1)
        for c in chains:
            c.add(k, lg)


def _chain(req: ProbeRequest, caches, t: int, out: dict, a_i: int, tick=None) -> dict:
    """log10 norms of every dense path at anchor t, lags 1..K, into out[(path, norm)][a_i];
    `tick(1)`, if given, after each lag. Returns the spectral trackers' counters."""
    start = sketch_start(req, caches, t)
    norms = _Norms(req, out, a_i, start)
    for k, (m, scale) in enumerate(jacobian_products(req, caches, t, start), start=1):
        norms.write(k, m, scale)
        if tick is not None:
            tick(1)
    return norms.counters()


def sketch_start(req: ProbeRequest, caches, t: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per sketched path at anchor t: (Z (B, w, q), L (B, r, r)), the chain's starting rows
    Z^T and the triangular factor of its Gaussian rows (probing/estimator.py), from the
    request's seed and each sequence's index in the whole batch; {} without a sketched path."""
    if not req.sketched:
        return {}
    how, S = req.estimator, req.cell.state_size
    seqs = range(req.first, req.first + req.batch)
    x = est.forward_range(req.cell, req.params, caches, t, req.lags, how.seed, seqs)
    out = {}
    for p, _, cols in req.layout:
        if p in req.sketched:
            w = len(range(S)[cols])
            omega_t = est.normal(how.seed, seqs, 1 + req.cell.paths.index(p), (w, how.rows))
            out[p] = est.bases(x[:, cols], omega_t)
    return out


class _Norms:
    """Writes each lag's norms of the dense paths' blocks of M into out[(path, norm)][a_i]:
    exact ones from the blocks, estimated ones from their sketch rows (`start`, sketch_start's)."""

    def __init__(self, req: ProbeRequest, out: dict, a_i: int, start: dict | None = None):
        self.req, self.out, self.a_i = req, out, a_i
        self.where = {p: (r, c) for p, r, c in req.layout if p not in req.sketched}
        self.sketch = {p: (r, c, start[p][1]) for p, r, c in req.layout if p in req.sketched}
        self.trackers = self._trackers() if "spectral" in req.norms else {}

    def _trackers(self) -> dict[tuple[str, ...], SpectralTracker]:
        """One spectral tracker per shape of block: blocks of equal shape (the LSTM's a and c)
        share one over a stacked batch, the power iteration's cost being mostly per-call
        overhead at these sizes."""
        S, groups = self.req.cell.state_size, {}
        for p, (r, c) in self.where.items():
            groups.setdefault((r.stop - r.start, len(range(S)[c])), []).append(p)
        return {tuple(ps): SpectralTracker(self.req.batch * len(ps), *shape) for shape, ps in groups.items()}

    def write(self, k: int, m: np.ndarray, scale: np.ndarray) -> None:
        """Lag k's norms from M (B, r, S) and its scale (see jacobian_products)."""
        if self.sketch:
            self._estimates(k, m, scale)
        with np.errstate(divide="ignore"):   # log10 of an exactly zero block: -inf
            rows_sq = self._frobenius(k, m, scale) if "frobenius" in self.req.norms else None
            for ps, tracker in self.trackers.items():
                # views into M, read in place (no copy of the blocks per lag)
                blocks = tuple(m[:, self.where[p][0], self.where[p][1]] for p in ps)
                top = None if rows_sq is None else np.concatenate([rows_sq[p].max(axis=1) for p in ps])
                sig = np.log10(tracker(blocks, top)).reshape(len(ps), self.req.batch)
                for i, p in enumerate(ps):
                    self.out[(p, "spectral")][self.a_i, :, k - 1] = sig[i] + scale

    def _frobenius(self, k, m, scale) -> dict[str, np.ndarray]:
        """Frobenius norms into out, and each block's squared row norms (B, r): one pass over
        a block gives both, and the largest row norm certifies the tracker's answer
        (matnorms: σ_max >= any row norm)."""
        rows_sq = {}
        for p, (r, c) in self.where.items():
            rows_sq[p] = np.einsum("bij,bij->bi", m[:, r, c], m[:, r, c])
            self.out[(p, "frobenius")][self.a_i, :, k - 1] = np.log10(np.sqrt(rows_sq[p].sum(axis=1))) + scale
        return rows_sq

    def _estimates(self, k, m, scale) -> None:
        """The sketched paths' estimates (log10 of the norms, squared ones halved) into out."""
        at, norms = (self.a_i, slice(None), k - 1), self.req.norms
        for p, (r, c, L) in self.sketch.items():
            e = est.sketch_norms(m[:, r, c], L)
            with np.errstate(divide="ignore", invalid="ignore"):   # an exact zero: -inf
                if "spectral" in norms:
                    self.out[(p, "spectral")][at] = 0.5 * np.log10(e.spectral_sq) + scale
                if "frobenius" in norms:
                    self.out[(p, "frobenius")][at] = 0.5 * np.log10(e.frobenius_sq) + scale
                    self.out[(p, "frobenius", "lo")][at] = 0.5 * np.log10(e.lo_sq) + scale
                    self.out[(p, "frobenius", "hi")][at] = 0.5 * np.log10(e.hi_sq) + scale
                    self.out[(p, "frobenius", "rel_stderr")][at] = e.stderr_sq / e.frobenius_sq

    def counters(self) -> dict[str, tuple[int, int]]:
        """Per tracker (its paths joined by '+'): (batched power iterations, eigensolves)."""
        return {"+".join(ps): (tr.iterations, tr.fallbacks) for ps, tr in self.trackers.items()}


def jacobian_products(req: ProbeRequest, caches, t: int, start: dict | None = None
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The dense chain from anchor t, lag by lag: for k = 1..K, (M, scale) with
    M 10**scale[b] = E d state<t>/d state<t-k> for sequence b, E selecting req.rows and then
    each sketched path's rows Z^T (`start`, sketch_start's; computed when not given), and
    max |M[b]| within one step's growth of 1 (scale NaN for a sequence whose chain turned
    non-finite; -inf once a product is exactly zero). Both arrays are the chain's own and
    change at the next lag: read them before asking for it. `caches`: a forward pass's
    (cells/unroll.py: trace.caches) of req.xs."""
    B, rows = req.batch, req.rows
    # each sequence's M is stored column-major (a transposed view): a vjp's new columns are
    # then one contiguous block, and the LSTM's per-sequence GEMM writing its a-columns runs
    # ~10% faster than into every other half-row (n = 128, measured)
    m = np.zeros((B, req.cell.state_size, req.chain_rows)).transpose(0, 2, 1)
    m[:, np.arange(rows.size), rows] = 1.0
    start = sketch_start(req, caches, t) if start is None else start
    for p, sl, cols in req.layout:
        if p in start:
            m[:, sl, cols] = start[p][0].transpose(0, 2, 1)
    scale = np.zeros(B)                      # log10 of what has been divided out, per sequence
    lag = _Lag(req.cell, req.params, m)
    for k in range(1, req.lags + 1):
        m = lag.advance(caches[t - k], m)
        step = lag.renormalise(m, scale)
        yield m, scale
        if lag.fused:   # the next vjp divides by this lag's max
            scale += step


class _Lag:
    """One lag of the chain, M <- M J, with the renormalisation that keeps M near 1: after
    every lag each sequence's M is divided by its largest |entry| and log10 of it is added to
    the sequence's scale.

    A cell whose vjp declares `out` (the LSTM) writes each lag into the buffer the lag before
    last used: no multi-megabyte allocation per lag. One that also declares `scale` and
    `absmax` renormalises on the fly ("fused"): it multiplies by the previous lag's 1/max
    inside its O(n^2) step matrices and reports the new max while each sequence's rows are in
    cache, which saves three passes over M per lag. M then lags one renormalisation behind,
    bounded by one step's growth."""

    def __init__(self, cell, params, m):
        self.cell, self.params = cell, params
        accepts = getattr(cell, "vjp_accepts", frozenset())
        self.spare = np.empty_like(m) if "out" in accepts else None
        self.fused = self.spare is not None and {"absmax", "scale"} <= accepts
        B = m.shape[0]
        self.inv, self.big = np.ones(B), np.empty(B)   # the last lag's 1/max, this lag's max

    def advance(self, cache, m) -> np.ndarray:
        """M J for the step whose cache is given (divided by the last lag's max when fused)."""
        extra = {"scale": self.inv, "absmax": self.big} if self.fused else {}
        if self.spare is None:   # still fused: the renormalisation is the vjp's, out or not
            return self.cell.vjp(self.params, cache, m, **extra)
        new = self.cell.vjp(self.params, cache, m, out=self.spare, **extra)
        self.spare = m if new is self.spare else None   # a vjp that ignored out: stop offering it
        return new

    def renormalise(self, m, scale) -> np.ndarray:
        """Divide each sequence's M by its max |entry| and add log10 of it to scale; fused, the
        division waits for the next vjp (but for a sequence far off 1) and the addition until
        this lag's norms are read: returns the log10 max per sequence for it."""
        big = self.big
        if not self.fused:
            big[...] = np.maximum(m.max(axis=(1, 2)), -m.min(axis=(1, 2)))   # max |entry|, no temporary
        bad = ~np.isfinite(big)
        if bad.any():   # NaN/inf from the cell (e.g. diverged weights): NaN from here on
            scale[bad], big[bad] = np.nan, 1.0
            m[bad] = 0.0   # keeps the linear algebra of the other sequences sane
        zero = big == 0.0
        self.inv = inv = 1.0 / np.where(zero, 1.0, big)
        with np.errstate(divide="ignore"):
            step = np.log10(np.where(zero, 0.0, big))                # -inf once exactly zero
        if not self.fused:
            scale += step
            m *= inv[:, None, None]
            return step
        # M is one step's factor off 1; beyond 1e±100 (a gate saturated past |b| ~ 230:
        # σ(-400) = 1.9e-174) the squares the norms are formed from would under- or
        # overflow (the c path read -inf), so such sequences are renormalised now
        far = ~zero & ((big < 1e-100) | (big > 1e100))
        if far.any():
            m[far] *= inv[far, None, None]
            scale[far] += step[far]
            inv[far], step[far] = 1.0, 0.0
        return step
