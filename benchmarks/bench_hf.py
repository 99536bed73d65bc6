"""Benchmark the measurements of Hugging Face models (diagnostics/interop): memory paths, the
sketched lag influence and the exact one, on a 4-layer Mamba2Model.

    python benchmarks/bench_hf.py [--layers 4] [--width 768] [--heads 24] [--state 128] [--steps 1024]
                                  [--batch 2] [--anchors 1000 1024] [--lags 1000] [--rows 64]
                                  [--measure-rows 64] [--exact-units 2] [--threads 1]

Printed, all measured in this run (not a test); torch on `--threads` intra-op threads (one by
default: on the shared 2-core machine a float64 forward at T = 256 took 9-11 s on two threads
and 2.2 s on one, at load ~7):
  * memory paths of every layer (memory_paths: one float64 forward pass with hooks, the logs
    summed per lag), wall time, and the median spectral log10 at the last lag per layer;
  * the sketch (lag_influence, estimator="sketch", `--rows` directions per anchor): with
    `--measure-rows` equal to `--rows` the whole call is timed; with fewer, the float64
    forward pass (with the graph kept) is timed once, the VJPs of the first `--measure-rows`
    directions at each anchor (batched as lag_influence batches them) and their norms are
    timed, and the whole is extrapolated as forward + (rows / measured) x (VJPs + norms),
    labelled "extrapolated";
  * the exact route (every one of the `--width` output units per anchor): the VJPs of
    `--exact-units` unit vectors at the last anchor timed, the SVDs of a block of
    `--width` x `--width` Jacobians timed over 8 lags, both extrapolated to every unit, lag
    and anchor; the rows it would hold (lag_influence refuses above influence.ROWS_MEMORY);
    and the ratio exact / sketch.
Numbers depend on the machine and its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import transformers as tf

from diagnostics.interop import influence as inf
from diagnostics.interop.memory import memory_paths
from diagnostics.interop.models import Call, float64_copy
from diagnostics.probing import estimator as est


def build(args):
    cfg = tf.Mamba2Config(hidden_size=args.width, num_heads=args.heads, head_dim=2 * args.width // args.heads,
                          state_size=args.state, expand=2, n_groups=1, num_hidden_layers=args.layers, vocab_size=16)
    torch.manual_seed(0)
    model = tf.Mamba2Model(cfg).eval()
    x = torch.randn(args.batch, args.steps, args.width, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, x


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def memory(model, x, args) -> float:
    sec, res = timed(lambda: memory_paths(model, x, args.lags, anchors=args.anchors))
    last = ", ".join(f"{p} {np.median(res.log10[(p, 'spectral')][-1, :, -1]):.2f}" for p in res.paths)
    print(f"memory paths, {len(res.paths)} layers, {args.lags} lags, {len(args.anchors)} anchors: {sec:.1f} s "
          f"(float32 inside: {res.float32_inside}); median log10 spectral at lag {args.lags}: {last}")
    return sec


def graph(model, x):
    """The float64 copy's forward with the graph kept, as lag_influence runs it: (x, y, saved bytes)."""
    m64 = float64_copy(model).requires_grad_(False)
    call = Call(m64, x)
    xg = call.x.clone().requires_grad_(True)
    saved = [0]
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(inf.saved_bytes(saved), lambda t: t):
        y = call.forward(xg)["influence"]
    return xg, y, saved[0]


def sketch(model, x, args) -> float:
    if args.measure_rows >= args.rows:
        sec, res = timed(lambda: inf.lag_influence(model, x, args.lags, anchors=args.anchors,
                                                   estimator="sketch", rows=args.rows))
        med = np.median(res.log10[("influence", "frobenius")][-1, :, -1])
        print(f"sketch, {args.rows} rows, {len(args.anchors)} anchors, {args.lags} lags: {sec:.1f} s measured; "
              f"median log10 Frobenius at lag {args.lags - 1}: {med:.2f}")
        return sec
    fwd, (xg, y, saved) = timed(lambda: graph(model, x))
    how = est.estimator("sketch", args.rows, 0)
    z, L = inf.directions(args.width, args.batch, how, 1)
    chunk = inf.chunk_size(saved, args.batch * args.rows)
    part = 0.0
    for t in args.anchors:
        s, rows = timed(lambda: inf.anchor_rows(y, xg, t, args.lags, z[:, :, :args.measure_rows], chunk))
        n, _ = timed(lambda: inf.sketch_norms(rows, L[:, :args.measure_rows, :args.measure_rows],
                                              ("spectral", "frobenius")))
        part += s + n
    total = fwd + part * args.rows / args.measure_rows
    print(f"float64 forward with the graph: {fwd:.1f} s, saved tensors {saved / 2**30:.2f} GB, VJP chunk {chunk}")
    print(f"sketch, {args.rows} rows, {len(args.anchors)} anchors, {args.lags} lags: {args.measure_rows} rows per "
          f"anchor measured in {part:.1f} s ({part / (args.measure_rows * len(args.anchors)):.1f} s per direction); "
          f"extrapolated {total:.0f} s")
    return total


def exact(model, x, args, sketch_sec: float) -> None:
    fwd, (xg, y, saved) = timed(lambda: graph(model, x))
    units = np.zeros((args.batch, args.width, args.exact_units))
    units[:, np.arange(args.exact_units), np.arange(args.exact_units)] = 1.0
    chunk = inf.chunk_size(saved, args.batch * args.width)
    sec, _ = timed(lambda: inf.anchor_rows(y, xg, args.anchors[-1], args.lags, units, min(chunk, args.exact_units)))
    per = sec / args.exact_units
    block = np.random.default_rng(0).standard_normal((args.batch, 8, args.width, args.width))
    svd, _ = timed(lambda: inf.exact_norms(block, ("spectral", "frobenius")))
    norms = svd / 8 * args.lags * len(args.anchors)
    total = fwd + per * args.width * len(args.anchors) + norms
    held = args.batch * args.lags * args.width * args.width * 8
    print(f"exact, {args.width} units per anchor: {args.exact_units} VJPs measured in {sec:.1f} s ({per:.1f} s each); "
          f"norms {svd:.1f} s per 8 lags; extrapolated {total:.0f} s ({total / 3600:.1f} h) for "
          f"{len(args.anchors)} anchors and {args.lags} lags; its rows {held / 2**30:.1f} GB per anchor "
          f"(lag_influence refuses above {inf.ROWS_MEMORY / 2**30:.0f} GB: use the sketch)")
    print(f"exact / sketch = {total / sketch_sec:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser()
    for name, default in (("layers", 4), ("width", 768), ("heads", 24), ("state", 128), ("steps", 1024),
                          ("batch", 2), ("lags", 1000), ("rows", 64), ("measure-rows", 64), ("exact-units", 2),
                          ("threads", 1)):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--anchors", type=int, nargs="+", default=[1000, 1024])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; torch {torch.__version__} on "
          f"{args.threads} thread(s), transformers {tf.__version__}; Mamba2Model, {args.layers} layers, d_model "
          f"{args.width}, {args.heads} heads, state {args.state}; T = {args.steps}, B = {args.batch}, anchors "
          f"{args.anchors}, float64")
    model, x = build(args)
    memory(model, x, args)
    sketch_sec = sketch(model, x, args)
    exact(model, x, args, sketch_sec)


if __name__ == "__main__":
    main()
