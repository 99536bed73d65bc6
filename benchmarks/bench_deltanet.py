"""Benchmark the probe's Kronecker fast path (diagnostics/probing/kron.py) on Gated DeltaNet's state
against the dense chain.

    python benchmarks/bench_deltanet.py [--heads 4] [--head-dim 64] [--lags 1000] [--batch 16]
                                        [--small-dim 6 8 10 12] [--small-lags 20] [--small-batch 4]

Printed, all measured in this run (not a test), one worker with one BLAS thread throughout (as
the probe runs each of its workers: threaded BLAS on these small products lost up to 50x to
contention on the shared 2-core machine):
  * at each `--small-dim` d (d_k = d_v = d, `--heads` heads): the `state` path of
    `--small-batch` sequences probed over `--small-lags` lags by the structured path (timed
    twice, the faster run kept) and by the dense chain (diagonal=False: the (H d²)-row product
    carried through the cell's vjp, renormalised, spectral tracker; timed once, it is the slow
    one); time per lag-sequence of both, their ratio, the peak memory numpy allocated in each
    (tracemalloc, a separate untimed run over 3 lags: the chain's memory does not grow with
    lags) and the largest difference of their curves in decades. The dense tracker mostly
    falls back to the eigensolver here: σ_max of I ⊗ P is repeated d_v times;
  * the dense chain's time per lag-sequence fitted as c d^p over those sizes (least squares in
    log-log; the vjp's flops grow as d^5, H d² rows each through H d_k x d_k by d_k x d_v
    products, the eigensolver's as d^6) and extrapolated to `--head-dim`, `--lags` and
    `--batch`; beside it the same from the largest measured d at p = 5 (the growth of the vjp's
    flops: at small d the per-lag overheads flatten the fit); and the memory its product would hold there (H d² x (n + H d²) float64 per
    sequence);
  * the big run: the structured path at `--head-dim` over `--lags` lags, `--batch` sequences,
    both norms (forward pass, replay of the factors and norms included): its wall time, time
    per lag-sequence and peak numpy memory, and the dense chain's extrapolated time over it.
Numbers depend on the machine and its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import functools
import os
import tracemalloc

import numpy as np
from timing import best_of

from diagnostics.cells import make_cell
from diagnostics.probing.core import probe
from diagnostics.probing.parallel import available_cores, single_threaded_blas

INPUTS, OUTPUT = 4, 16      # d (features per step) and n (the layer's output width)
NORMS = ("spectral", "frobenius")


def _setup(heads, dim, T, B, seed=0):
    cell = make_cell("gated_deltanet", input_size=INPUTS, hidden=OUTPUT, heads=heads, head_dim=dim, expand_v=1.0)
    params = cell.init(np.random.default_rng(seed))
    xs = np.random.default_rng(seed + 1).normal(size=(T, B, INPUTS))
    return cell, params, xs


def _peak_mb(fn) -> float:
    """Peak memory numpy allocated while fn ran (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _dense_bytes(heads, dim, batch) -> float:
    """The dense chain's product: H d² rows of the state path by the whole state (n + H d²)."""
    rows = heads * dim * dim
    return 8.0 * rows * (OUTPUT + rows) * batch


def main():
    with single_threaded_blas():
        run()


def run():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--lags", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--small-dim", type=int, nargs="+", default=[6, 8, 10, 12])
    ap.add_argument("--small-lags", type=int, default=20)
    ap.add_argument("--small-batch", type=int, default=4)
    a = ap.parse_args()
    print(f"cores {available_cores()}, load average {os.getloadavg()[0]:.2f}; gated_deltanet, {a.heads} heads, "
          f"d_k = d_v, input {INPUTS}, output {OUTPUT}, both norms, 1 worker, 1 BLAS thread")

    kw = {"paths": ["state"], "norms": NORMS, "workers": 1}
    dims, dense_per = [], []
    for d in a.small_dim:
        cell, params, xs = _setup(a.heads, d, a.small_lags, a.small_batch)
        fast_run = functools.partial(probe, cell, params, xs, **kw)
        dense_run = functools.partial(probe, cell, params, xs, diagonal=False, **kw)
        t_fast, fast = best_of(fast_run, 2)
        t_dense, dense = best_of(dense_run, 1)
        m_fast = _peak_mb(functools.partial(fast_run, lags=3))
        m_dense = _peak_mb(functools.partial(dense_run, lags=3))
        diff = max(float(np.abs(fast.log10[k] - dense.log10[k]).max()) for k in fast.log10)
        lag_seq = a.small_lags * a.small_batch
        dims.append(d)
        dense_per.append(t_dense / lag_seq)
        print(f"d = {d:3d} (state {a.heads * d * d:5d}), {a.small_lags} lags, {a.small_batch} sequences: structured {t_fast:.3f} s "
              f"({1e6 * t_fast / lag_seq:.0f} us per lag-sequence, peak {m_fast:.1f} MB), dense {t_dense:.3f} s "
              f"({1e6 * t_dense / lag_seq:.0f} us, peak {m_dense:.1f} MB; its product "
              f"{_dense_bytes(a.heads, d, a.small_batch) / 2**20:.1f} MB); dense / structured = {t_dense / t_fast:.1f}x; "
              f"curves differ by <= {diff:.1e} decades")

    p, logc = np.polyfit(np.log(dims), np.log(dense_per), 1)
    dense_big = np.exp(logc) * a.head_dim ** p * a.lags * a.batch
    dense_low = dense_per[-1] * (a.head_dim / dims[-1]) ** 5 * a.lags * a.batch
    print(f"dense time per lag-sequence ~ d^{p:.2f} over d = {', '.join(map(str, dims))} "
          f"(the vjp's flops grow as d^5, the eigensolver's as d^6); "
          f"extrapolated to d = {a.head_dim}, {a.lags} lags, {a.batch} sequences: {dense_big:,.0f} s "
          f"({dense_big / 86400:,.1f} days; at d^5 from d = {dims[-1]}: {dense_low:,.0f} s, "
          f"{dense_low / 86400:,.1f} days), its product {_dense_bytes(a.heads, a.head_dim, a.batch) / 1e9:.1f} GB "
          f"({_dense_bytes(a.heads, a.head_dim, 1) / 1e9:.2f} GB per sequence)")

    cell, params, xs = _setup(a.heads, a.head_dim, a.lags, a.batch)
    big_run = functools.partial(probe, cell, params, xs, **kw)
    t_big, res = best_of(big_run, 1)
    m_big = _peak_mb(big_run)
    v = res.log10[("state", "spectral")]
    lag_seq = a.lags * a.batch
    print(f"d = {a.head_dim} (state {a.heads * a.head_dim ** 2:,}), {a.lags} lags, {a.batch} sequences, structured: {t_big:.1f} s "
          f"({1e6 * t_big / lag_seq:.0f} us per lag-sequence), peak {m_big:.0f} MB "
          f"(inputs {xs.nbytes / 2**20:.1f} MB); all finite: {bool(np.isfinite(v).all())}; median "
          f"log10 ||dS<T>/dS<T-K>||_2 at K = {a.lags}: {np.median(v[0, :, -1]):.2f}; "
          f"dense (extrapolated) / structured = {dense_big / t_big:,.0f}x (at d^5: {dense_low / t_big:,.0f}x)")


if __name__ == "__main__":
    main()
