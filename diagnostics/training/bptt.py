"""Back-propagation through time for any cell with `step` and `backward`.

    trace = unroll(cell, params, inputs)                  # states (T, B, S) and per-step caches
    out   = loss_and_grads(cell, params, readout, batch, loss_kind)
    out.loss, out.accuracy, out.grads (cell names + "V", "b_y"), out.flow (T,) ||dL/da<s>||
    total = full_loss(cell, params, readout, batch, loss_kind)   # forward only; complex-safe
    lags, comps = temporal_components(cell, params, out, names)  # per-lag parts of dL/dW

The read-out sees the cell's output block (Cell.output_block): a<t>, or the output y<t> a
Mamba, Gated DeltaNet or mLSTM carries in its state without feeding it back; "a<t>" below means
that block. State index t = 0..T-1 holds state<t+1> (the state after reading input t); the cache of
step t holds state<t>, so `backward` on it turns dL/dstate<t+1> into dL/dstate<t>.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cells.base import leading_w_names
from ..cells.unroll import Trace, unroll
from .readout import gather, loss_and_dy, loss_value, readout_backward, readout_forward


@dataclass
class Gradients:
    loss: float
    accuracy: float | None
    grads: dict            # cell parameter names plus "V" and "b_y"
    flow: np.ndarray       # (T,) Frobenius norm over the batch of dL/da<t+1> at each step
    trace: Trace
    g_out: np.ndarray      # (T, B, n) the read-out's direct gradient on a<t> (for components)


def full_loss(cell, params, readout, batch, loss_kind):
    """The loss from parameters alone; complex dtypes pass through (gradient checks)."""
    dtype = np.result_type(*params.values(), *readout.values(), batch.inputs)
    trace = unroll(cell, params, batch.inputs.astype(dtype))
    h, tm, bm = gather(trace.states[:, :, cell.blocks[cell.output_block]], batch.mask)
    return loss_value(readout_forward(readout, h), batch.targets[tm, bm], loss_kind)


def loss_and_grads(cell, params, readout, batch, loss_kind) -> Gradients:
    trace = unroll(cell, params, batch.inputs)
    out_blk = cell.blocks[cell.output_block]
    h, tm, bm = gather(trace.states[:, :, out_blk], batch.mask)
    y = readout_forward(readout, h)
    loss, dy, acc = loss_and_dy(y, batch.targets[tm, bm], loss_kind)
    grads, dh = readout_backward(readout, h, dy)
    T, B, S = trace.states.shape
    g_out = np.zeros((T, B, h.shape[1]), dtype=trace.states.dtype)
    g_out[tm, bm] = dh
    cell_grads, flow = backward_through_time(cell, params, trace, g_out)
    grads.update(cell_grads)
    return Gradients(loss, acc, grads, flow, trace, g_out)


def backward_through_time(cell, params, trace: Trace, g_out: np.ndarray):
    """Sum of every step's parameter gradient, and ||dL/da<t>|| at each step."""
    T, B, S = trace.states.shape
    out_blk = cell.blocks[cell.output_block]
    g = np.zeros((B, S), dtype=trace.states.dtype)
    flow = np.empty(T)
    total = None
    for t in range(T - 1, -1, -1):
        g[:, out_blk] += g_out[t]
        flow[t] = np.sqrt(np.vdot(g[:, out_blk], g[:, out_blk]).real)
        g, grads, _ = cell.backward(params, trace.caches[t], g)
        if total is None:
            total = {k: np.array(v, copy=True) for k, v in grads.items()}
        else:
            for k, v in grads.items():
                total[k] += v
    return total, flow


recurrent_names = leading_w_names   # the convention's rule, for callers that have no cell


def temporal_components(cell, params, out: Gradients, names=None):
    """Per-lag components of dL/dθ for the recurrent weights θ (REFERENCES.md item 1).

    dL/dθ = Σ_t Σ_{k<=t} (dL_t/da<t>) (da<t>/da<k>) (d⁺a<k>/dθ); the component at lag j
    collects the terms with t - k = j. Each scored step t is propagated back on its own, so
    every immediate gradient can be filed under its lag; the components sum to the full
    BPTT gradient by linearity. Cost: (#scored steps) x T backward steps.
    Returns (lags (T,) ints 0..T-1, components (T, P) flattened over `names`).
    """
    if names is None:   # a cell may name its own (the LRU's ν, θ; minGRU's gate weights)
        names = cell.recurrent_names(params)
    trace, g_out = out.trace, out.g_out
    T, B, S = trace.states.shape
    out_blk = cell.blocks[cell.output_block]
    size = sum(params[k].size for k in names)
    comps = np.zeros((T, size), dtype=trace.states.dtype)
    for t in np.nonzero(np.any(g_out != 0, axis=(1, 2)))[0]:
        g = np.zeros((B, S), dtype=trace.states.dtype)
        g[:, out_blk] = g_out[t]
        for k in range(t, -1, -1):
            g, grads, _ = cell.backward(params, trace.caches[k], g)
            comps[t - k] += np.concatenate([grads[n].ravel() for n in names])
    return np.arange(T), comps
