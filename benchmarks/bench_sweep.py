"""Sweep throughput and overhead: points per minute on 1 and 2 workers, and what the sweep
machinery costs per point against running the same cases the way `diag run` does.

    python benchmarks/bench_sweep.py [--points 16] [--steps 300] [--repeats 2]

The points: latch p = 20, a tanh RNN and an LSTM (n = 32), `--steps` Adam steps, a probe of
40 lags, seeds 0 .. points-1. Three measurements in one run, each in a fresh output folder:

  direct   every point in this process, one after the other, as `diag run --no-report` does
           it (resolve, compute, publish curves.json + run.json), BLAS on one thread
  sweep 1  `diag sweep` machinery with an embedded cluster of 1 worker (cluster start, points
           shipped to the worker and back, written whole, sweep.json, sweep-run.json)
  sweep 2  the same with 2 workers

  cluster  starting and stopping the embedded cluster of 1 worker with one trivial task: the
           one-time cost of a sweep, whatever its size

Overhead per point = (sweep 1 wall - cluster - direct wall) / points, as a fraction of the
direct time per point (target: under 5%): shipping the case to the worker and the documents
back, writing them whole, the worker's first imports; the whole difference, cluster included,
is printed too, and split in two from the points' own compute times (their run.json), as
medians over every point of every repeat: a point's compute in process against in a worker,
and the machinery outside it per point. Scaling efficiency = (points/min on 2) / (2 x points/min on 1). Each
measurement is repeated, interleaved with the others, and the fastest kept. The machine may
be shared (two workers then do not get two cores): the load average is printed with the
figures, and the points' own compute times (from their run.json) show how much of a wall
time was the points' work.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from diagnostics.probing.parallel import single_threaded_blas
from diagnostics.run.runner import run_to_folder
from diagnostics.sweep.cluster import open_client
from diagnostics.sweep.grid import load_sweep
from diagnostics.sweep.run import run_sweep


def write_sweep(folder: Path, points: int, steps: int) -> Path:
    base = {"name": "bench", "seed": 0, "task": {"kind": "latch", "p": 20},
            "cells": [{"kind": "rnn", "label": "tanh RNN", "hidden": 32},
                      {"kind": "lstm", "label": "LSTM", "hidden": 32}],
            "train": {"steps": steps, "batch": 32, "optimizer": {"kind": "adam", "lr": 0.01}, "clip": 1.0},
            "probe": {"lags": 40, "sequences": 8, "norms": ["spectral"], "lyapunov": 0, "tk_map": {"anchors": 0}}}
    sweep = {"name": "bench_sweep", "base": base, "vary": {"seed": {"range": [0, points]}},
             "success": {"kind": "loss_below_baseline", "fraction": 0.1}}
    path = folder / "bench_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def direct(sweep, out: Path) -> tuple[float, list[float]]:
    """(wall, each point's own compute seconds)."""
    t0 = time.perf_counter()
    computes = []
    with single_threaded_blas():
        for p in sweep.points:
            computes.append(run_to_folder(p.spec, out / p.id, report=False, show=False).run.timings["compute"])
    return time.perf_counter() - t0, computes


def swept(sweep, out: Path, workers: int) -> tuple[float, list[float]]:
    """(wall, each point's own compute seconds, from its run.json)."""
    t0 = time.perf_counter()
    res = run_sweep(sweep, out, workers=workers, report=False, show=False)
    wall = time.perf_counter() - t0
    assert res.outcome.ran and not res.outcome.failed, res.outcome
    return wall, [json.loads(p.read_text())["timings"]["compute"] for p in sorted((res.folder / "points").glob("*/run.json"))]


def cluster_only() -> float:
    t0 = time.perf_counter()
    with open_client(1) as client:
        client.submit(abs, -1, pure=False).result()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        sweep = load_sweep(write_sweep(tmp, args.points, args.steps))
        n = len(sweep.points)
        load0 = os.getloadavg()[0]
        runs = []
        for r in range(args.repeats):   # interleaved, so drifting load hits every measurement
            runs.append((direct(sweep, tmp / f"direct{r}"), cluster_only(),
                         swept(sweep, tmp / f"one{r}", 1), swept(sweep, tmp / f"two{r}", 2)))
        t_direct, _ = min(x[0] for x in runs)
        t_cluster = min(x[1] for x in runs)
        t1, c1 = min(x[2] for x in runs)
        t2, c2 = min(x[3] for x in runs)
        load1 = os.getloadavg()[0]
        # medians over every point of every repeat: a burst of load on this shared VM moves a
        # sum of points far more than it moves their median
        med_d = float(np.median([c for x in runs for c in x[0][1]]))
        med_1 = float(np.median([c for x in runs for c in x[2][1]]))
        mach = float(np.median([(x[2][0] - x[1] - sum(x[2][1])) / n for x in runs]))
    per = t_direct / n
    print(f"{n} points (latch p = 20, tanh RNN + LSTM n = 32, {args.steps} steps); load average {load0:.1f} -> {load1:.1f}")
    print(f"direct (diag run's work, in process): {t_direct:7.1f} s  {60 * n / t_direct:6.2f} points/min  {per:.2f} s/point")
    print(f"cluster start + stop (1 worker)     : {t_cluster:7.1f} s")
    print(f"sweep, 1 worker                     : {t1:7.1f} s  {60 * n / t1:6.2f} points/min  (points' compute {sum(c1):.1f} s)")
    print(f"sweep, 2 workers                    : {t2:7.1f} s  {60 * n / t2:6.2f} points/min  (points' compute {sum(c2):.1f} s)")
    extra = t1 - t_cluster - t_direct
    print(f"overhead per point (1 worker vs direct, cluster excluded): {extra / n:+.3f} s = {extra / t_direct:+.1%} "
          f"(target < 5%); with the cluster's start and stop: {(t1 - t_direct) / t_direct:+.1%}")
    print(f"  split, medians over {args.repeats} x {n} points: a point's compute {med_d:.3f} s in process, {med_1:.3f} s "
          f"in a worker ({med_1 / med_d - 1:+.1%}); the machinery outside the points' compute {mach:+.3f} s per point "
          f"({mach / med_d:+.1%})")
    print(f"scaling 1 -> 2 workers: {t1 / t2:.2f}x, efficiency {t1 / (2 * t2):.0%}; per-point compute with 2 workers "
          f"/ with 1: {sum(c2) / sum(c1):.2f} (1.00 when each worker has a core of its own)")


if __name__ == "__main__":
    main()
