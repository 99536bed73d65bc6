"""Benchmark the probe's diagonal fast path (diagnostics/probing/diagonal.py) against the dense chain.

    python benchmarks/bench_diagonal.py [--cell indrnn] [--big-n 4096] [--lags 10000]
                                        [--batch 16] [--small-n 128 256] [--small-lags 300]

Printed, all measured in this run (not a test):
  * the big run: the fast path over `--lags` lags at n = `--big-n`, `--batch` sequences, both
    norms, default workers (forward pass, replay and norms included); its wall time, the time
    per lag-sequence, per lag-sequence-unit, and the peak memory of this process and of its
    workers;
  * at each `--small-n`: the same cell probed over `--small-lags` lags by the fast path and by
    the dense chain (diagonal=False: vjp products, renormalisation, spectral tracker), one
    worker each, each timed twice and the faster run kept; time per lag-sequence of both and
    their ratio; and the largest difference of their curves, with the number of
    sequence-lags where they differ by more than 1e-10 decades (the dense tracker's misses on
    wide diagonal chains, see tests/test_diagonal.py).
The cell's inputs are N(0, 0.25) (tanh pre-activations stay moderate). Numbers depend on the
machine and its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import os
import resource

import numpy as np
from timing import best_of

from diagnostics.cells import make_cell
from diagnostics.probing.core import probe, probe_workers
from diagnostics.probing.parallel import available_cores

CELLS = {"indrnn": {"activation": "tanh", "recurrent_min": 0.5, "recurrent_max": 1.0},
         "lru": {}, "mingru": {}, "minlstm": {}}


def _setup(kind, n, T, B, seed=0):
    cell = make_cell(kind, input_size=2, hidden=n, **CELLS[kind])
    params = cell.init(np.random.default_rng(seed))
    xs = 0.5 * np.random.default_rng(seed + 1).normal(size=(T, B, 2))
    return cell, params, xs


def _peak_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0   # kilobytes on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="indrnn", choices=sorted(CELLS))
    ap.add_argument("--big-n", type=int, default=4096)
    ap.add_argument("--lags", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--small-n", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--small-lags", type=int, default=300)
    a = ap.parse_args()
    print(f"cores {available_cores()}, load average {os.getloadavg()[0]:.2f}, cell {a.cell} {CELLS[a.cell]}")

    for n in a.small_n:
        cell, params, xs = _setup(a.cell, n, a.small_lags, a.batch)
        kw = dict(norms=("spectral", "frobenius"), workers=1)
        t_fast, fast = best_of(lambda: probe(cell, params, xs, **kw), 2)
        t_dense, dense = best_of(lambda: probe(cell, params, xs, diagonal=False, **kw), 2)
        lag_seq = a.small_lags * a.batch
        diff = np.concatenate([np.abs(fast.log10[k] - dense.log10[k]).ravel() for k in fast.log10])
        diff = diff[np.isfinite(diff)]
        print(f"n = {n:5d}, {a.small_lags} lags, {a.batch} sequences, 1 worker: fast {t_fast:.3f} s "
              f"({1e6 * t_fast / lag_seq:.1f} us per lag-sequence), dense {t_dense:.3f} s "
              f"({1e6 * t_dense / lag_seq:.1f} us); dense / fast = {t_dense / t_fast:.1f}x; "
              f"curves differ by <= {diff.max():.1e} decades, > 1e-10 at {int((diff > 1e-10).sum())} "
              f"of {diff.size} points")

    cell, params, xs = _setup(a.cell, a.big_n, a.lags, a.batch)
    workers = probe_workers(cell, a.batch, a.lags, 1, diagonal_only=True)
    t_big, res = best_of(lambda: probe(cell, params, xs, norms=("spectral", "frobenius")), 1)
    lag_seq = a.lags * a.batch
    v = res.log10[("a", "spectral")]
    per_unit = 1e9 * t_big / (lag_seq * cell.state_size)
    print(f"n = {a.big_n}, {a.lags} lags, {a.batch} sequences, {workers} worker(s): {t_big:.1f} s "
          f"({1e6 * t_big / lag_seq:.0f} us per lag-sequence, {per_unit:.1f} ns per lag-sequence-unit); "
          f"all finite: {bool(np.isfinite(v).all())}; median log10 ||d a<T>/d a<T-K>||_2 at K = {a.lags}: "
          f"{np.median(v[0, :, -1]):.2f}")
    print(f"peak memory: this process {_peak_mb(resource.RUSAGE_SELF):.0f} MB, "
          f"largest worker {_peak_mb(resource.RUSAGE_CHILDREN):.0f} MB "
          f"(inputs {xs.nbytes / 2**20:.0f} MB; caches of a dense probe would hold "
          f"~{3 * a.lags * a.batch * a.big_n * 8 / 2**30:.1f} GB)")


if __name__ == "__main__":
    main()
