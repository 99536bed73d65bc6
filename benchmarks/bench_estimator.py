"""Benchmark the probe's sketch (diagnostics/probing/estimator.py): speed at widths the exact
chain cannot reach, and how close the estimates are.

    python benchmarks/bench_estimator.py [--n 1024] [--T 1000] [--batch 8] [--rows 32]
                                         [--exact-sizes 512 1024] [--exact-lags 8]
                                         [--wide 2048 --wide-T 200] [--lyapunov-steps 200]
                                         [--calibration-n 256 --calibration-T 500 --seeds 10]

Printed, all measured in this run:
  * the sketch: a default LSTM, n units, T steps, `batch` random sequences, anchor T, lags
    1..T, paths a and c, Frobenius and the spectral lower bound, r rows (probe's own choice of
    workers): wall time and peak resident memory (this process and its workers); the chain's
    flops (2 B q (2n) 4n per lag per path, q = r + REFINE rows) per second against a float64
    numpy GEMM's, the fraction of GEMM peak;
  * the exact probe at each of `exact-sizes` over its first `exact-lags` lags (same cell,
    sequences and paths): seconds per lag, its whole-curve time extrapolated (lags x per-lag
    time; the forward pass is not the cost), and the ratio exact / sketch at equal work (the
    same T lags);
  * `--wide`: the sketch at that width over `wide-T` steps (time, peak memory): feasibility;
  * the Lyapunov spectrum (m = 8) of the n-unit LSTM over `lyapunov-steps` steps: its cost;
  * calibration (RNN, GRU, LSTM at calibration-n, calibration-T, over `seeds` seeds, r in 16,
    32, 64, 128): the fraction of (seed, sequence, lag) pairs whose exact Frobenius value lies
    in the 95% interval, the worst per-lag error in decades, the fitted decay factor's relative
    error, and the spectral lower bound's gap below the exact value (median, worst, and the
    first lag from which every gap is within 0.1 decades).
Numbers depend on the machine and its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.probing import estimator as est
from diagnostics.probing.core import probe
from diagnostics.probing.lyapunov import lyapunov_run
from diagnostics.probing.metrics import fit_decay
from timing import best_of

PATHS = ("a", "c")


def gemm_gflops(size: int = 2048, reps: int = 3) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    best, _ = best_of(lambda: a @ b, reps)
    return 2.0 * size ** 3 / best / 1e9


def peak_mib() -> float:
    """Peak resident memory of this process and of its (forked, finished) workers, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def lstm(n: int, T: int, batch: int, seed: int = 0):
    cell = make_cell("lstm", input_size=8, hidden=n)
    params = cell.init(np.random.default_rng(seed))
    xs = np.random.default_rng(100 + seed).standard_normal((T, batch, 8))
    return cell, params, xs


def sketch_flops(n: int, batch: int, lags: int, rows: int) -> float:
    """The chain's GEMM flops, counted as benchmarks/bench_probe.py counts the exact chain's:
    per path, lag and sequence, q = rows + REFINE rows (q, 2n) @ E (2n, n), E the step
    Jacobian's a-columns with the gate diagonals folded in (lstm.vjp)."""
    return 2.0 * batch * (rows + est.REFINE) * 2 * n * n * lags * len(PATHS)


def timed_sketch(n, T, batch, rows):
    cell, params, xs = lstm(n, T, batch)
    t0 = time.perf_counter()
    res = probe(cell, params, xs, lags=T, paths=PATHS, estimator="sketch", rows=rows, seed=0)
    return time.perf_counter() - t0, res


def performance(a) -> None:
    peak = gemm_gflops()
    dt, _ = timed_sketch(a.n, a.T, a.batch, a.rows)
    fl = sketch_flops(a.n, a.batch, a.T, a.rows)
    print(f"sketch  LSTM n={a.n} T={a.T} B={a.batch} r={a.rows} paths a,c, Frobenius + spectral lower bound: "
          f"{dt:.1f} s, peak memory {peak_mib():.0f} MiB")
    print(f"        chain {fl / 1e9:.0f} GFLOP in {dt:.1f} s = {fl / dt / 1e9:.1f} GFLOP/s; numpy GEMM (2048^2, all "
          f"cores) {peak:.1f} GFLOP/s: {fl / dt / 1e9 / peak:.0%} of GEMM peak")
    for n in a.exact_sizes:
        cell, params, xs = lstm(n, a.T, a.batch)
        K = a.exact_lags
        # the forward pass over the stream is timed apart, so the per-lag cost is the chain's
        t_fwd, _ = best_of(lambda: probe(cell, params, xs, lags=1, paths=PATHS), 1)
        t_all, _ = best_of(lambda: probe(cell, params, xs, lags=K, paths=PATHS), 1)
        per_lag = max(t_all - t_fwd, 0.0) / (K - 1)
        whole = t_fwd + per_lag * a.T
        line = f"exact   LSTM n={n} T={a.T} B={a.batch}: {per_lag:.2f} s per lag (lags 2..{K}), " \
               f"forward + 1 lag {t_fwd:.1f} s; all {a.T} lags ~{whole:.0f} s ({whole / 60:.1f} min)"
        if n == a.n:
            line += f"; exact / sketch at equal work: {whole / dt:.1f}x"
        print(line)
    if a.wide:
        dt_w, _ = timed_sketch(a.wide, a.wide_T, a.batch, a.rows)
        print(f"wide    LSTM n={a.wide} T={a.wide_T} B={a.batch} r={a.rows}: {dt_w:.1f} s, "
              f"peak memory {peak_mib():.0f} MiB (all runs so far)")
    if a.lyapunov_steps:
        cell, params, xs = lstm(a.n, a.lyapunov_steps, a.batch)
        t, _ = best_of(lambda: lyapunov_run(cell, params, xs, m=8, warmup=a.lyapunov_steps // 5), 1)
        print(f"lyapunov LSTM n={a.n} m=8 B={a.batch}: {t:.1f} s over {a.lyapunov_steps} steps "
              f"({t / a.lyapunov_steps * 1e3:.0f} ms per step)")


def calibration(a) -> None:
    n, T, K, B = a.calibration_n, a.calibration_T, a.calibration_T - 1, 4
    print(f"calibration  n={n} T={T} lags 1..{K} B={B}, seeds 0..{a.seeds - 1}; "
          f"interval {est.LEVEL:.0%} two-sided (log10 of the norm)")
    for kind in ("rnn", "gru", "lstm"):
        cell = make_cell(kind, input_size=8, hidden=n)
        params = cell.init(np.random.default_rng(0))
        xs = np.random.default_rng(100).standard_normal((T, B, 8))
        exact = probe(cell, params, xs, lags=K, paths=("a",))
        e_f, e_s = exact.log10[("a", "frobenius")], exact.log10[("a", "spectral")]
        for r in (16, 32, 64, 128):
            if not est.estimator("sketch", r).sketches(n):
                continue
            inside = total = 0
            worst, fit_err, gaps = 0.0, 0.0, []
            for seed in range(a.seeds):
                res = probe(cell, params, xs, lags=K, paths=("a",), estimator="sketch", rows=r, seed=seed)
                f, iv = res.log10[("a", "frobenius")], res.interval[("a", "frobenius")]
                inside += int(((iv[..., 0] <= e_f) & (e_f <= iv[..., 1])).sum())
                total += e_f.size
                worst = max(worst, float(np.abs(f - e_f).max()))
                for b in range(B):
                    fe = fit_decay(exact.lags, e_f[0, b])["factor"]
                    fit_err = max(fit_err, abs(fit_decay(res.lags, f[0, b])["factor"] / fe - 1))
                gaps.append(e_s - res.log10[("a", "spectral")])
            g = np.concatenate(gaps, axis=1)[0]        # (seeds B, K)
            far = np.flatnonzero((g > 0.1).any(axis=0))
            within = 1 if far.size == 0 else int(far[-1]) + 2
            print(f"  {kind:4s} r={r:3d}: inside {inside / total:.3f}; worst error {worst:.3f} decades; "
                  f"decay factor within {fit_err:.2%}; spectral gap median {np.median(g):.3f}, worst {g.max():.3f}, "
                  f"min {g.min():.1e} decades; within 0.1 from lag {within}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--exact-sizes", type=int, nargs="*", default=[512, 1024])
    ap.add_argument("--exact-lags", type=int, default=8)
    ap.add_argument("--wide", type=int, default=0)
    ap.add_argument("--wide-T", type=int, default=200)
    ap.add_argument("--lyapunov-steps", type=int, default=200)
    ap.add_argument("--calibration-n", type=int, default=256)
    ap.add_argument("--calibration-T", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--skip", choices=["performance", "calibration"], default=None)
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    if a.skip != "performance":
        performance(a)
    if a.skip != "calibration":
        calibration(a)


if __name__ == "__main__":
    main()
