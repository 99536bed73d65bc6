"""Benchmark: what a LagMonitor costs a training loop, as a ratio measured in the same run.

    python benchmarks/bench_monitor.py [--hidden 256] [--length 200] [--batch 32] [--probe-batch 8]
                                       [--steps 1000] [--every 100] [--lags 64] [--estimator exact] [--rows 64]
                                       [--sketch-hidden 1024] [--sketch-steps N] [--threads N]

An nn.LSTM(2, n) with a linear head, trained with Adam on random (T, batch, 2) inputs against
random targets (the cost of a step does not depend on what is learned), `steps` steps plus
step 0, with LagMonitor(model, probe batch, every, lags, estimator) stepped after each update.
Timed in the same process: the training steps alone (forward, backward, update) and the
monitor's calls (its probes and folder writes), so the overhead is monitor time / training
time of the same run; then the same training without a monitor, for the wall-clock ratio of
the two runs (noisier on a shared machine: it compares two stretches of time). Then the same
with the sketch (estimator="sketch", `rows` rows) at n = --sketch-hidden. Fewer steps than 1,000
keep the ratio per checkpoint: one checkpoint's cost against `every` steps of training, both
measured in the run. torch uses its default threads unless --threads; the monitor probes with
one BLAS thread (diagnostics/interop/torch.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from diagnostics.interop.torch import LagMonitor


def train(args, monitored: bool, out: str):
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    lstm, head = torch.nn.LSTM(2, args.hidden), torch.nn.Linear(args.hidden, 1)
    model.add_module("lstm", lstm)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(1)
    probe_batch = torch.randn(args.length, args.probe_batch, 2, generator=g)
    monitor = LagMonitor(lstm, probe_batch, out, every=args.every, lags=args.lags, estimator=args.estimator,
                         rows=args.rows) if monitored else None
    t_train = t_monitor = 0.0
    for step in range(args.steps + 1):
        x = torch.randn(args.length, args.batch, 2, generator=g)
        y = torch.randn(args.batch, 1, generator=g)
        t0 = time.perf_counter()
        loss = torch.mean((head(lstm(x)[0][-1]) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if monitor is not None:
            monitor.step(step, loss=loss)
        t2 = time.perf_counter()
        t_train, t_monitor = t_train + (t1 - t0), t_monitor + (t2 - t1)
    if monitor is not None:
        monitor.close()
    return t_train, t_monitor, (monitor.folder.checkpoints if monitor is not None else [])


def measure(args) -> None:
    how = args.estimator + (f", {args.rows} rows" if args.estimator != "exact" else "")
    print(f"nn.LSTM n = {args.hidden}, T = {args.length}, batch {args.batch}, probe batch {args.probe_batch}, "
          f"{args.steps} Adam steps, every {args.every}, lags {args.lags}, {how}; torch threads "
          f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        t_train, t_mon, cks = train(args, True, os.path.join(tmp, "m"))
    per_ck, per_step = t_mon / max(len(cks), 1), t_train / (args.steps + 1)
    print(f"  monitored run: training {t_train:.1f} s ({per_step:.3f} s a step), monitor {t_mon:.1f} s over "
          f"{len(cks)} checkpoints ({per_ck:.2f} s each): overhead {100 * t_mon / t_train:.1f} % of the training time")
    print(f"  one checkpoint per {args.every} steps costs {100 * per_ck / (args.every * per_step):.1f} % of their "
          f"training (target < 10 %: {'met' if per_ck < 0.1 * args.every * per_step else 'NOT met'})")
    t_plain, _, _ = train(args, False, "")
    print(f"  the same training without a monitor: {t_plain:.1f} s; the monitored run's {t_train + t_mon:.1f} s is "
          f"{(t_train + t_mon) / t_plain:.2f}x that (two stretches of time, load {os.getloadavg()[0]:.1f} at the end)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--probe-batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--lags", type=int, default=64)
    ap.add_argument("--estimator", default="exact")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--sketch-hidden", type=int, default=1024, help="then the same with the sketch at this n (0: no)")
    ap.add_argument("--sketch-steps", type=int, default=None, help="steps of that run (default: --steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    measure(args)
    if args.sketch_hidden:
        measure(argparse.Namespace(**{**vars(args), "hidden": args.sketch_hidden, "estimator": "sketch",
                                      "steps": args.sketch_steps or args.steps}))


if __name__ == "__main__":
    main()
