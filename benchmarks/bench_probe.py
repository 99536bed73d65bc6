"""Benchmark the probe on an LSTM: Jacobian-chain GFLOP/s against numpy's GEMM, and PyTorch.

    python benchmarks/bench_probe.py [--sizes 64 128] [--lengths 300 1000] [--batch 16] [--no-torch]

For each (n, T): the probe of a default LSTM over 16 random sequences, anchor T, lags 1..T,
paths a and c, spectral norm at every lag. Printed, all measured in this run:
  * the chain's GFLOP/s: flops of the vjp GEMMs, 2 B r (2n) n per lag with r = 2n rows,
    divided by (a) the time spent inside cell.vjp during the probe, summed over its workers
    and divided by their number (they run side by side, one per core), and (b) the wall time
    of the chain alone: the probe's forward pass, vjp's and renormalisation with no norms, on
    the same workers, process start included; and the same flops divided by the whole
    probe's time (spectral norms included);
  * a large float64 numpy matmul's GFLOP/s on the same machine, and the ratio;
  * if torch imports (never a dependency of the package): the time of the PyTorch autograd
    route to the same curves -- forward with the graph, then vjp's from state<T> vectorised
    over all 2n output units (is_grads_batched), chained chunk by chunk down to state<0> so
    memory stays bounded, then torch.linalg.matrix_norm(ord=2) of the a- and c-blocks -- and
    the largest difference between its curves and the probe's where both are finite.
The probe, the chain alone and the PyTorch route are each timed twice and the faster run kept.
Numbers depend on the machine and its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.cells.unroll import first_nonfinite, unroll
from diagnostics.probing.core import jacobian_products, probe, probe_request, probe_workers
from diagnostics.probing.parallel import available_cores, chunks, map_chunks


class TimedCell:
    """Delegates to a cell and adds up the wall time spent in vjp, over all of the probe's
    workers: the total lives in shared memory, which forked workers inherit."""

    def __init__(self, cell):
        self._cell, self.total = cell, multiprocessing.Value("d", 0.0)

    def __getattr__(self, name):
        return getattr(self._cell, name)

    def vjp(self, params, cache, m, out=None, scale=None, absmax=None):   # the LSTM's signature
        t0 = time.perf_counter()
        out = self._cell.vjp(params, cache, m, out=out, scale=scale, absmax=absmax)
        dt = time.perf_counter() - t0
        with self.total.get_lock():
            self.total.value += dt
        return out


def gemm_gflops(size: int = 2048, reps: int = 5) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2.0 * size ** 3 / best / 1e9


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def chain_flops(cell, batch: int, lags: int, rows: int) -> float:
    """Flops of the GEMMs lstm.vjp runs for the probe's many rows: per sequence and lag,
    [M_a, M_c] (r, 2n) @ E (2n, n), E being the step Jacobian's a-columns with the gate
    diagonals folded in (building E and the c-columns are elementwise and not counted)."""
    return 2.0 * batch * rows * cell.state_size * cell.hidden * lags


def chain_alone(req, workers: int) -> None:
    """The probe's forward pass and Jacobian chain (vjp's and renormalisation, no norms) from
    the last step, its batch split over `workers` as probe() splits it, each with one BLAS
    thread (as the probe's workers have; main() limits BLAS to --threads anyway)."""
    def part(s):
        r = req.part(s)
        trace = unroll(r.cell, r.params, r.xs, r.h0)
        first_nonfinite(trace)   # the probe's look for a diverged forward pass
        for _ in jacobian_products(r, trace.caches, r.xs.shape[0]):
            pass
    map_chunks(part, chunks(req.batch, workers), one_blas_thread=True)


def torch_route(cell, params, xs, chunk: int = 100):
    """log10 spectral norms of the a- and c-blocks of d state<T>/d state<T-k>, k = 1..T."""
    import torch

    n, (T, B, _) = cell.hidden, xs.shape
    W, U, b = (torch.tensor(np.array(params[k])) for k in ("W", "U", "b"))
    X = torch.as_tensor(xs)
    s = torch.zeros(B, 2 * n, dtype=torch.float64, requires_grad=True)
    states = [s]
    for t in range(T):
        a, c = s[:, :n], s[:, n:]
        z = a @ W.T + X[t] @ U.T + b
        u, f, g, o = torch.sigmoid(z[:, :n]), torch.sigmoid(z[:, n:2 * n]), torch.tanh(z[:, 2 * n:3 * n]), torch.sigmoid(z[:, 3 * n:])
        c = u * g + f * c
        s = torch.cat([o * torch.tanh(c), c], dim=1)
        states.append(s)
    seed = torch.eye(2 * n, dtype=torch.float64)[:, None, :].expand(2 * n, B, 2 * n).contiguous()
    out = {"a": np.empty((B, T)), "c": np.empty((B, T))}
    top, k0 = states[T], 0
    while k0 < T:
        ks = list(range(k0 + 1, min(T, k0 + chunk) + 1))
        grads = torch.autograd.grad(top, [states[T - k] for k in ks], grad_outputs=seed,
                                    is_grads_batched=True, retain_graph=True)
        with torch.no_grad():
            J = torch.stack(grads).permute(0, 2, 1, 3)         # (chunk, B, 2n rows, 2n cols)
            for name, sl in (("a", slice(0, n)), ("c", slice(n, 2 * n))):
                norms = torch.linalg.matrix_norm(J[:, :, sl, sl], ord=2)
                out[name][:, k0:k0 + len(ks)] = torch.log10(norms).T.numpy()
        top, seed, k0 = states[T - ks[-1]], grads[-1], ks[-1]   # chain on from the deepest state
    return out


def run_case(n: int, T: int, B: int, use_torch: bool, threads: int) -> None:
    cell = make_cell("lstm", input_size=8, hidden=n)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((T, B, 8))
    # all cores: the probe's own default (see probe_workers); fewer: that many
    asked = None if threads >= available_cores() else threads
    workers = probe_workers(cell, B, T, 1, asked)
    probe(cell, params, xs[:20], paths=("a", "c"), norms=("spectral",), workers=asked)   # warm caches
    # the machine may be shared: GEMM rate measured right before and after this case, the
    # better of the two taken as the reference (the conservative choice for the ratio); the
    # probe and the chain are timed twice each and the faster runs kept
    gemm = gemm_gflops()
    chain_s = total = np.inf
    for _ in range(2):
        req = probe_request(cell, params, xs, paths=("a", "c"), norms=("spectral",))   # checks: not timed
        t0 = time.perf_counter()
        chain_alone(req, workers)
        chain_s = min(chain_s, time.perf_counter() - t0)
        timed = TimedCell(cell)
        t0 = time.perf_counter()
        res = probe(timed, params, xs, paths=("a", "c"), norms=("spectral",), workers=asked)
        if time.perf_counter() - t0 < total:
            total, vjp_s = time.perf_counter() - t0, timed.total.value / workers
    gemm = max(gemm, gemm_gflops())
    flops = chain_flops(cell, B, T, 2 * n)
    chain, chain_vjp = flops / chain_s / 1e9, flops / vjp_s / 1e9
    its = sum(i for p in res.stats.values() for i, _ in p.values())
    fb = sum(f for p in res.stats.values() for _, f in p.values())
    print(f"LSTM n={n:4d} B={B} T={T:5d}: probe {total:7.2f} s, {workers} worker(s) | chain: inside vjp "
          f"{chain_vjp:6.1f} GFLOP/s = {chain_vjp / gemm:5.1%} of GEMM, alone {chain:6.1f} GFLOP/s = {chain / gemm:5.1%} | whole probe {flops / total / 1e9:6.1f} "
          f"GFLOP/s = {flops / total / 1e9 / gemm:5.1%} (GEMM {gemm:.1f} GFLOP/s) | products with A per lag and path {its / (2 * T):.2f}, eigensolver fallbacks (sequence-lags) {fb}")
    if use_torch:
        import torch
        torch_route(cell, params, xs[:20])   # warm-up: torch initialises its kernels on first use
        tt = np.inf   # timed twice and the faster run kept, as for the probe above
        for _ in range(2):
            t0 = time.perf_counter()
            ref = torch_route(cell, params, xs)
            tt = min(tt, time.perf_counter() - t0)
        diffs = []
        for path in ("a", "c"):
            mine, theirs = res.log10[(path, "spectral")][0], ref[path]
            both = np.isfinite(mine) & np.isfinite(theirs)
            diffs.append(np.abs(mine[both] - theirs[both]).max() if both.any() else np.nan)
        print(f"    PyTorch {torch.__version__} autograd route: {tt:7.2f} s -> probe is {tt / total:5.1f}x faster; "
              f"max |Δ log10| vs probe where both finite {max(diffs):.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--lengths", type=int, nargs="+", default=[300, 1000])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="cores to use: the probe's worker threads (each with one BLAS thread), torch's threads "
                         "and numpy's BLAS threads for the GEMM reference; 1 is fairest on a busy machine")
    args = ap.parse_args()
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            use_torch = False
    from threadpoolctl import threadpool_limits  # a dependency of the package
    threadpool_limits(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}; numpy {np.__version__}; torch {'yes' if use_torch else 'not installed'}")
    for n in args.sizes:
        for T in args.lengths:
            run_case(n, T, args.batch, use_torch, args.threads)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
