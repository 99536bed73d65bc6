"""Benchmark: a 2-layer nn.LSTM into the probe, against PyTorch autograd on the same curves.

    python benchmarks/bench_torch_import.py [--hidden 256] [--length 500] [--batch 8] [--lags 100]

All timed in this run, on the same module (PyTorch's default init, seed 0, float64) and the
same random inputs (T, B, 2):
  * import + probe: the module's state_dict saved as .safetensors, then load_weights(layer="all")
    (a Stacked cell of two analytic LSTMs) and probe(paths a and c of the top layer, spectral
    norm, lags 1..K from anchor T): the import alone and the whole;
  * the PyTorch autograd route to the same curves: the module run one step at a time from
    states that require grad, then vjp's from the top layer's [h; c] at T vectorised over its
    2n rows (is_grads_batched), chained chunk by chunk down the lags, spectral norms by
    torch.linalg.matrix_norm(ord=2); and the largest difference between the two routes' curves;
  * the torch-function cell (diagnostics.cells.torchfn, derivatives by torch.func) stepping the
    same nn.LSTM, against the built-in cell, probe for probe.
Each is timed twice and the faster run kept; ratios are of times measured here.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from timing import best_of

from diagnostics.cells.torchfn import TorchFn
from diagnostics.probing.core import probe
from diagnostics.weights import load_weights

PATHS, NORMS = ("a", "c"), ("spectral",)


def import_and_probe(path, xs, K, layer="all"):
    t0 = time.perf_counter()
    imp = load_weights(path, "lstm", layer=layer)
    t_import = time.perf_counter() - t0
    res = probe(imp.cell, imp.params, imp.inputs(xs), lags=K, paths=PATHS, norms=NORMS)
    return t_import, res


def torch_route(m, xs, K, chunk=10):
    """log10 spectral norms of the a- and c-blocks of d [h1; c1]<T> / d [h1; c1]<T-k>, (B, K)."""
    T, B, _ = xs.shape
    n, L = m.hidden_size, m.num_layers
    X = torch.as_tensor(xs)
    h = torch.zeros(L, B, n, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(L, B, n, dtype=torch.float64, requires_grad=True)
    states = [(h, c)]
    for t in range(T):
        _, (h, c) = m(X[t:t + 1], (h, c))
        states.append((h, c))
    # 2n rows: the top layer's h (rows 0..n-1) and c (rows n..2n-1)
    seed_h = torch.zeros(2 * n, L, B, n, dtype=torch.float64)
    seed_c = torch.zeros(2 * n, L, B, n, dtype=torch.float64)
    idx = torch.arange(n)
    seed_h[idx, L - 1, :, idx] = 1.0
    seed_c[n + idx, L - 1, :, idx] = 1.0
    out = {"a": np.empty((B, K)), "c": np.empty((B, K))}
    top, k0 = states[T], 0
    while k0 < K:
        ks = list(range(k0 + 1, min(K, k0 + chunk) + 1))
        wrt = [s for k in ks for s in states[T - k]]
        grads = torch.autograd.grad(list(top), wrt, grad_outputs=[seed_h, seed_c], is_grads_batched=True,
                                    retain_graph=True)
        with torch.no_grad():
            for j, k in enumerate(ks):
                gh, gc = grads[2 * j], grads[2 * j + 1]          # (2n rows, L, B, n)
                for name, g, rows in (("a", gh, slice(0, n)), ("c", gc, slice(n, 2 * n))):
                    blk = g[rows, L - 1].permute(1, 0, 2)         # (B, n rows, n cols)
                    out[name][:, k - 1] = torch.log10(torch.linalg.matrix_norm(blk, ord=2)).numpy()
        top, seed_h, seed_c, k0 = states[T - ks[-1]], grads[-2], grads[-1], ks[-1]
    return out


def torchfn_cell(m):
    """The nn.LSTM itself as a TorchFn cell: state [h0; c0; h1; c1] like the Stacked cell's."""
    n, L = m.hidden_size, m.num_layers

    def step(p, s, x):
        hc = s.reshape(s.shape[0], L, 2, n)
        h, c = hc[:, :, 0].transpose(0, 1).contiguous(), hc[:, :, 1].transpose(0, 1).contiguous()
        _, (h, c) = torch.func.functional_call(m, p, (x[None], (h, c)))
        return torch.stack([h, c], dim=2).transpose(0, 1).reshape(s.shape[0], -1)

    blocks = tuple(b for k in range(L) for b in ((f"l{k}.a", f"l{k}.c") if k < L - 1 else ("a", "c")))
    params = {k: v.detach().numpy() for k, v in m.named_parameters()}
    return TorchFn(step, input_size=m.input_size, hidden=n, state_blocks=blocks), params


def max_diff(r1, r2):
    d = 0.0
    for p in PATHS:
        a, b = r1[p], r2[p]
        both = np.isfinite(a) & np.isfinite(b)
        d = max(d, float(np.abs(a[both] - b[both]).max()))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lags", type=int, default=100, help="lags 1..K from anchor T (both routes cost K x one lag)")
    ap.add_argument("--torchfn-lags", type=int, default=50, help="lags for the torchfn comparison")
    args = ap.parse_args()
    T, B, n = args.length, args.batch, args.hidden
    K = min(args.lags, T)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.2f}")
    torch.manual_seed(0)
    m = torch.nn.LSTM(2, n, num_layers=2).double()
    xs = np.random.default_rng(1).standard_normal((T, B, 2))
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "lstm2.safetensors"
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    import_and_probe(path, xs[:20], 10)   # warm-up
    t_ours, (t_import, res) = best_of(lambda: import_and_probe(path, xs, K))
    ours = {p: res.log10[(p, "spectral")][0] for p in PATHS}
    print(f"2-layer nn.LSTM n={n}, T={T}, B={B}, lags 1..{K}, paths a and c (spectral):")
    print(f"  import + probe  {t_ours:8.2f} s (import {t_import * 1e3:.1f} ms)")
    # the top layer's own blocks are diagonal blocks of a block-triangular product: layer 1
    # imported alone (its inputs computed through layer 0) gives the same curves, chaining
    # only its own Jacobians
    t_top, (_, res1) = best_of(lambda: import_and_probe(path, xs, K, layer=1))
    d1 = max_diff(ours, {p: res1.log10[(p, "spectral")][0] for p in PATHS})
    print(f"  import layer 1 alone + probe {t_top:8.2f} s (the same curves, max |Δ log10| {d1:.1e})")
    torch_route(m, xs[:20], 10)                # warm-up
    t_torch, ref = best_of(lambda: torch_route(m, xs, K))
    print(f"  PyTorch autograd route {t_torch:8.2f} s -> import + probe is {t_torch / t_ours:5.2f}x faster; "
          f"max |Δ log10| {max_diff(ours, ref):.1e}")
    # the torch-function cell against the built-in cell, fewer lags (it is the slow route)
    Kf = min(args.torchfn_lags, T)
    cell, params = torchfn_cell(m)
    imp = load_weights_from_module(m)
    probe(cell, params, xs[:5], lags=3, paths=PATHS, norms=NORMS)
    t_fn, rf = best_of(lambda: probe(cell, params, xs, lags=Kf, paths=PATHS, norms=NORMS))
    t_built, rb = best_of(lambda: probe(imp.cell, imp.params, xs, lags=Kf, paths=PATHS, norms=NORMS))
    d = max(float(np.abs(rf.log10[(p, "spectral")] - rb.log10[(p, "spectral")]).max()) for p in PATHS)
    print(f"  torchfn cell (torch.func through the nn.LSTM), lags 1..{Kf}: {t_fn:7.2f} s; built-in Stacked "
          f"LSTM: {t_built:7.2f} s -> built-in {t_fn / t_built:5.1f}x faster; max |Δ log10| {d:.1e}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    tmp.cleanup()


def load_weights_from_module(m):
    from diagnostics.interop.torch import from_module
    return from_module(m, layer="all")


if __name__ == "__main__":
    main()
