"""The linear read-out y<t> = V a<t> + b_y at the scored steps, and the two losses.

Only a<t>, the a-block of the state, is read: for the LSTM the memory c<t> must pass through
the output gate first, which is the path whose gradients the project studies.

Losses are means over the scored (t, b) pairs (and over output channels for MSE). Every
function here also runs on complex arrays, so the gradient check can take a complex step
through the whole loss: no abs(), no real-only max; the log-sum-exp shift uses the real
part, which is a constant, so it cancels exactly.
"""
from __future__ import annotations

import numpy as np

LOSS_KINDS = ("xent", "mse")


def init_readout(rng: np.random.Generator, hidden: int, outputs: int, dtype=np.float64) -> dict:
    # N(0, 1/n) rather than zeros: with V = 0 no gradient would reach the cell at step 0, and
    # the gradient-flow curve at the first checkpoint would be empty
    return {"V": (rng.standard_normal((outputs, hidden)) / np.sqrt(hidden)).astype(dtype),
            "b_y": np.zeros(outputs, dtype=dtype)}


def gather(a: np.ndarray, mask: np.ndarray):
    """The scored hidden states, (M, n), and their (t, b) indices."""
    tm, bm = np.nonzero(mask)
    return a[tm, bm], tm, bm


def _log_softmax(y):
    shift = y.real.max(axis=1, keepdims=True)
    z = y - shift
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss_value(y: np.ndarray, targets: np.ndarray, loss_kind: str):
    """Mean loss of outputs y (M, o) against scored targets: class ids (M,) or values (M, o)."""
    if loss_kind == "xent":
        logp = _log_softmax(y)
        return -logp[np.arange(len(y)), targets].mean()
    if loss_kind == "mse":
        d = y - targets
        return (d * d).mean()
    raise ValueError(f"loss_kind: must be one of {', '.join(LOSS_KINDS)}, got {loss_kind!r}")


def loss_and_dy(y: np.ndarray, targets: np.ndarray, loss_kind: str):
    """(loss, dL/dy (M, o), accuracy or None) for real y."""
    M = len(y)
    if loss_kind == "xent":
        logp = _log_softmax(y)
        rows = np.arange(M)
        loss = -logp[rows, targets].mean()
        dy = np.exp(logp)
        dy[rows, targets] -= 1.0
        dy /= M
        acc = float((y.argmax(axis=1) == targets).mean())
        return float(loss), dy, acc
    d = y - targets.astype(y.dtype, copy=False)  # float64 targets must not promote a float32 run
    loss = (d * d).mean()
    return float(loss), (2.0 / d.size) * d, None


def readout_forward(readout: dict, h: np.ndarray) -> np.ndarray:
    return h @ readout["V"].T + readout["b_y"]


def readout_backward(readout: dict, h: np.ndarray, dy: np.ndarray):
    """({V, b_y} gradients, dL/dh (M, n))."""
    return {"V": dy.T @ h, "b_y": dy.sum(axis=0)}, dy @ readout["V"]
