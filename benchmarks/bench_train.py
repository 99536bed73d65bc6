"""Time one training step (forward, BPTT, Adam) of an LSTM, n = 64, batch 32, T = 100, in
float64 and float32, against torch.nn.LSTM doing the same step when PyTorch is importable.

    python benchmarks/bench_train.py [--repeats 30] [--threads N]

The same work on both sides: the adding task (d = 2, one scored step), a linear read-out,
MSE, full BPTT over 100 steps, one Adam update; batches are sampled beforehand and not
timed. Timings are the best of interleaved repeats (the machine may be shared). Ratios are
ours / torch: below 1 means faster than PyTorch. Targets: float64 <= 1, float32 <= 1.5.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set, can slow OpenBLAS; unset them for this command.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.tasks import make_task
from diagnostics.training import init_readout, make_optimizer
from diagnostics.training.fused_lstm import FusedLSTM

N, B, T = 64, 32, 100


def numpy_step_fn(dtype, batch):
    task = make_task("adding", length=T)
    cell = make_cell("lstm", input_size=task.input_size, hidden=N)
    p = {k: v.astype(dtype) for k, v in cell.init(np.random.default_rng(0)).items()}
    ro = init_readout(np.random.default_rng(1), N, 1, dtype)
    both = {**{("c", k): v for k, v in p.items()}, **{("r", k): v for k, v in ro.items()}}
    opt = make_optimizer({"kind": "adam", "lr": 1e-3}, both)
    b = batch._replace(inputs=batch.inputs.astype(dtype))

    fused = FusedLSTM(cell)  # what train() runs on untracked steps

    def step():
        out = fused.loss_and_grads(p, ro, b, "mse")
        g = {("c", k): out.grads[k] for k in p} | {("r", k): out.grads[k] for k in ro}
        opt.update(both, g)
        return out.loss
    return step


def torch_step_fn(dtype, batch):
    import torch
    tdt = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, N).to(tdt)
    lin = torch.nn.Linear(N, 1).to(tdt)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(lin.parameters()), lr=1e-3)
    x = torch.tensor(batch.inputs, dtype=tdt)
    y = torch.tensor(batch.targets[-1], dtype=tdt)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(lin(out[-1]), y)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def best_times(fns, repeats):
    """Per function, the minimum over `repeats` of one call, calls interleaved round-robin.

    The minimum, as in timeit: on a shared machine every disturbance only adds time, so the
    fastest run is the closest to the cost of the work itself; interleaving exposes both sides
    to the same background load."""
    for fn in fns:
        fn()  # warm-up: first-call allocations, BLAS thread start
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            ts[i].append(time.perf_counter() - t0)
    return [min(t) for t in ts]


def main(argv=None):
    ap = argparse.ArgumentParser(description="one LSTM training step: numpy vs torch")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: all)")
    a = ap.parse_args(argv)
    threads = a.threads or os.cpu_count()
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:  # the bench extra is optional; BLAS then uses its own default
        pass
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    batch = make_task("adding", length=T).sample(np.random.default_rng(2), B)
    print(f"LSTM n={N} batch={B} T={T}, one step = forward + BPTT + Adam; threads={threads}; "
          f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    results = {}
    for name, dtype, target in [("float64", np.float64, 1.0), ("float32", np.float32, 1.5)]:
        fns = [numpy_step_fn(dtype, batch)] + ([torch_step_fn(dtype, batch)] if torch else [])
        times = best_times(fns, a.repeats)
        ours = times[0]
        line = f"{name}: diagnostics {ours * 1e3:8.2f} ms"
        if torch is not None:
            theirs = times[1]
            ratio = ours / theirs
            line += (f"   torch {theirs * 1e3:8.2f} ms   ratio {ratio:5.2f} "
                     f"(target <= {target}: {'met' if ratio <= target else 'NOT met'})")
            results[name] = (ours, theirs, ratio)
        else:
            results[name] = (ours, None, None)
        print(line)
    return results


if __name__ == "__main__":
    main()
