"""Pieces the selective cells (mamba, mamba2, mlstm, gated_deltanet, rglru) share.

    softplus, silu, silu_slope          complex-safe (complex-step checks pass through)
    causal_conv, causal_conv_reverse    the depthwise causal convolution whose last K - 1 inputs
                                        are carried in the state (Mamba's conv1d)
    Grads                               parameter gradients of one reverse pass, summed over
                                        sequences and rows (backward) or kept per row (param_vjp)
    ReverseCell                         a cell whose hooks all come from one reverse pass

One reverse pass per cell. `ReverseCell._reverse(params, cache, G, grads, want_x)` takes rows
G (B, r, S) of dL/d state<t> and returns (G d state<t>/d state<t-1> (B, r, S), G d state<t>/d x<t>
(B, r, d) or None), adding the parameter gradients to `grads` when given. vjp, input_vjp,
backward, param_vjp and jacobian are that pass with what each needs; check_cell checks every
one against the step's own derivatives.
"""
from __future__ import annotations

import numpy as np

from .base import Cell, log_sigmoid, sigmoid, sigmoid_slope


def softplus(z: np.ndarray) -> np.ndarray:
    """ln(1 + e^z) = -ln σ(-z), from z itself: exact for large |z| and complex-safe."""
    return -log_sigmoid(-z)


def inverse_softplus(y: np.ndarray) -> np.ndarray:
    """The z with softplus(z) = y > 0: y + ln(-expm1(-y)) (PyTorch issue 72759's form)."""
    return y + np.log(-np.expm1(-y))


def silu(z: np.ndarray) -> np.ndarray:
    return z * sigmoid(z)


def silu_slope(z: np.ndarray) -> np.ndarray:
    """d silu/dz = σ(z) + z σ'(z), with σ' from z (base.sigmoid_slope)."""
    return sigmoid(z) + z * sigmoid_slope(z)


def causal_conv(w: np.ndarray, b: np.ndarray | None, buf: np.ndarray, u: np.ndarray):
    """One step of a depthwise causal convolution: w (C, 1, K) as PyTorch's Conv1d(groups=C)
    weight, buf (B, C, K - 1) the last K - 1 inputs, oldest first, u (B, C) the new one.
    c[:, i] = Σ_j window[:, i, j] w[i, 0, j] + b[i], window = [buf, u] (B, C, K); the next
    buffer is window[..., 1:]. Returns (c, window)."""
    window = np.concatenate([buf, u[:, :, None]], axis=2)
    c = np.einsum("bck,ck->bc", window, w[:, 0, :])
    return (c if b is None else c + b), window


def causal_conv_reverse(w: np.ndarray, dc: np.ndarray, g_buf: np.ndarray):
    """Rows dc (B, r, C) of dL/dc and g_buf (B, r, C, K - 1) of dL/d(next buffer) -> rows of
    dL/d window (B, r, C, K): the previous buffer's are [..., :K - 1], the new input's [..., -1]."""
    dw = dc[..., None] * w[:, 0, :]
    dw[..., 1:] += g_buf
    return dw


class Grads:
    """Parameter gradients of one reverse pass: summed over sequences and rows (`per_row`
    False: backward) or kept per sequence and row, (B, r, *shape) (param_vjp). Only the
    `names` asked for are formed."""

    def __init__(self, names, per_row: bool):
        self.names, self.per_row, self.out = set(names), per_row, {}

    def _put(self, name: str, v: np.ndarray) -> None:
        self.out[name] = self.out[name] + v if name in self.out else v

    def add(self, name: str, rows: np.ndarray) -> None:
        """rows (B, r, *shape): each row's gradient of `name`."""
        if name in self.names:
            self._put(name, rows if self.per_row else rows.sum(axis=(0, 1)))

    def outer(self, name: str, dy: np.ndarray, x: np.ndarray, shape=None) -> None:
        """A weight W (a, c) of y = x W^T: rows dy (B, r, a), x (B, c) -> dy ⊗ x; reshaped to
        `shape` (a Conv1d weight's (C, 1, K))."""
        if name not in self.names:
            return
        v = dy[..., :, None] * x[:, None, None, :] if self.per_row else np.einsum("bra,bc->ac", dy, x)
        self._put(name, v if shape is None else v.reshape(v.shape[:-2] + tuple(shape)))


class ReverseCell(Cell):
    """A cell whose vjp, input_vjp, backward, param_vjp and jacobian are one reverse pass
    (`_reverse`, see the module docstring)."""

    def _reverse(self, params, cache, G, grads: Grads | None, want_x: bool):
        raise NotImplementedError

    def vjp(self, params, cache, m):
        return self._reverse(params, cache, m, None, False)[0]

    def input_vjp(self, params, cache, m):
        return self._reverse(params, cache, m, None, True)[1]

    def jacobian(self, params, cache):
        B, S = self._batch(cache), self.state_size
        return self.vjp(params, cache, np.broadcast_to(np.eye(S), (B, S, S)))

    def backward(self, params, cache, g):
        grads = Grads(params, per_row=False)
        prev, g_x = self._reverse(params, cache, g[:, None, :], grads, True)
        return prev[:, 0], {k: grads.out.get(k, np.zeros(np.shape(params[k]))) for k in params}, g_x[:, 0]

    def param_vjp(self, params, cache, m, names):
        grads = Grads(names, per_row=True)
        self._reverse(params, cache, m, grads, False)
        B, r = m.shape[:2]
        return {k: grads.out.get(k, np.zeros((B, r) + np.shape(params[k]))) for k in names}

    def _batch(self, cache) -> int:
        return cache.x.shape[0]
