"""Sweep throughput and overhead: points per minute on 1 and 2 workers, and what the sweep
machinery costs per point against running the same cases the way `diag run` does.

    python benchmarks/bench_sweep.py [--points 8] [--steps 300]

The points: latch p = 20, a tanh RNN and an LSTM (n = 32), `--steps` Adam steps, a probe of
40 lags, seeds 0 .. points-1. Three measurements in one run, each in a fresh output folder:

  direct   every point in this process, one after the other, as `diag run --no-report` does
           it (resolve, compute, publish curves.json + run.json), BLAS on one thread
  sweep 1  `diag sweep` machinery with an embedded cluster of 1 worker (cluster start, points
           shipped to the worker and back, written whole, sweep.json, sweep-run.json)
  sweep 2  the same with 2 workers

Overhead per point = (sweep 1 wall - direct wall) / points, as a fraction of the direct time
per point (target: under 5%); it includes starting and stopping the cluster, which a longer
sweep spreads over more points. Scaling efficiency = (points/min on 2) / (2 x points/min on 1).
The machine may be shared: the load average is printed with the figures.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from diagnostics.parallel import single_threaded_blas
from diagnostics.runner import run_to_folder
from diagnostics.sweep.grid import load_sweep
from diagnostics.sweep.run import run_sweep


def write_sweep(folder: Path, points: int, steps: int) -> Path:
    base = {"name": "bench", "seed": 0, "task": {"kind": "latch", "p": 20},
            "cells": [{"kind": "rnn", "label": "tanh RNN", "hidden": 32},
                      {"kind": "lstm", "label": "LSTM", "hidden": 32}],
            "train": {"steps": steps, "batch": 32, "optimizer": {"kind": "adam", "lr": 0.01}, "clip": 1.0},
            "probe": {"lags": 40, "sequences": 8, "norms": ["spectral"], "lyapunov": 0, "tk_map": {"anchors": 0}}}
    sweep = {"name": "bench_sweep", "base": base, "vary": {"seed": {"range": [0, points]}},
             "success": {"loss_below_baseline": 0.1}}
    path = folder / "bench_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def direct(sweep, out: Path) -> float:
    t0 = time.perf_counter()
    with single_threaded_blas():
        for p in sweep.points:
            run_to_folder(p.spec, out / p.id, report=False, show=False)
    return time.perf_counter() - t0


def swept(sweep, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    res = run_sweep(sweep, out, workers=workers, report=False, show=False)
    assert res.outcome.ran and not res.outcome.failed, res.outcome
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        sweep = load_sweep(write_sweep(tmp, args.points, args.steps))
        n = len(sweep.points)
        load0 = os.getloadavg()[0]
        t_direct = direct(sweep, tmp / "direct")
        t1 = swept(sweep, tmp / "one", 1)
        t2 = swept(sweep, tmp / "two", 2)
        load1 = os.getloadavg()[0]
    per = t_direct / n
    print(f"{n} points (latch p = 20, tanh RNN + LSTM n = 32, {args.steps} steps); load average {load0:.1f} -> {load1:.1f}")
    print(f"direct (diag run's work, in process): {t_direct:7.1f} s  {60 * n / t_direct:6.2f} points/min  {per:.2f} s/point")
    print(f"sweep, 1 worker                     : {t1:7.1f} s  {60 * n / t1:6.2f} points/min")
    print(f"sweep, 2 workers                    : {t2:7.1f} s  {60 * n / t2:6.2f} points/min")
    print(f"overhead per point (1 worker vs direct): {(t1 - t_direct) / n:+.3f} s = {(t1 - t_direct) / t_direct:+.1%} "
          "(target < 5%; cluster start and stop included)")
    print(f"scaling 1 -> 2 workers: {t1 / t2:.2f}x, efficiency {t1 / (2 * t2):.0%}")


if __name__ == "__main__":
    main()
