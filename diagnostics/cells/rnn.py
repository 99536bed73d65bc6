"""Plain (Elman) RNN cell.

    z<t>  = W_a a<t-1> + U_a x<t> + b_a          W_a: (n, n)  U_a: (n, d)  b_a: (n,)
    a<t>  = g(z<t>)                              g in {tanh, relu, linear};  a<t>: (B, n)

    d a<t> / d a<t-1> = diag(g'(z<t>)) W_a       (B, n, n)

The Pascanu bound uses γ = sup |g'| = 1 for all three activations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import Cell, freeze, init_matrix, tanh_slope, weights_times

ACTIVATIONS = ("tanh", "relu", "linear")


@dataclass(frozen=True)
class RNN(Cell):
    """A plain RNN: a<t> = g(W_a a<t-1> + U_a x<t> + b_a)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>")
    activation: Literal[ACTIVATIONS] = option("tanh", "g: tanh, relu or linear")
    recurrent_init: InitSpec = option(
        Init("orthogonal", 1.0), "initialiser {kind, gain} of the matrices acting on the previous state")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "rnn"
    parallel_safe: ClassVar[bool] = True   # pure: the probe may split a batch over workers

    @property
    def analytic(self) -> bool:
        return self.activation != "relu"

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d = self.hidden, self.input_size
        return freeze({
            "W_a": init_matrix(rng, self.recurrent_init, n, n, n),
            "U_a": init_matrix(rng, self.input_init, n, d, n),
            "b_a": np.full(n, float(self.bias)),
        })

    def _g(self, z):
        if self.activation == "tanh":   # tanh' from z: 1 - a² is 0 from |z| ~ 19 (base.tanh_slope)
            return np.tanh(z), tanh_slope(z)
        if self.activation == "relu":
            return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
        return z, np.ones_like(z)

    def step(self, params, state, x):
        z = state @ params["W_a"].T + x @ params["U_a"].T + params["b_a"]
        a, gp = self._g(z)
        return a, (state, x, gp)

    def jacobian(self, params, cache):
        _, _, gp = cache
        return gp[:, :, None] * params["W_a"][None]

    def vjp(self, params, cache, m):
        _, _, gp = cache
        B, r, n = m.shape
        return ((m * gp[:, None, :]).reshape(B * r, n) @ params["W_a"]).reshape(B, r, n)

    def jvp(self, params, cache, v):
        """J v = g' * (W_a v) for columns v (B, n, p)."""
        _, _, gp = cache
        return gp[:, :, None] * weights_times(params["W_a"], v)

    def input_vjp(self, params, cache, m):
        """m @ d a<t>/d x<t> = (m g') U_a for rows m (B, r, n)."""
        _, _, gp = cache
        B, r, n = m.shape
        return ((m * gp[:, None, :]).reshape(B * r, n) @ params["U_a"]).reshape(B, r, -1)

    def backward(self, params, cache, g):
        a_prev, x, gp = cache
        gz = g * gp
        grads = {"W_a": gz.T @ a_prev, "U_a": gz.T @ x, "b_a": gz.sum(axis=0)}
        return gz @ params["W_a"], grads, gz @ params["U_a"]

    def param_vjp(self, params, cache, m, names):
        """backward's parameter gradients kept per sequence and row (B, r, ...), not summed."""
        a_prev, x, gp = cache
        gz = m * gp[:, None, :]
        per = {"W_a": lambda: gz[..., :, None] * a_prev[:, None, None, :],
               "U_a": lambda: gz[..., :, None] * x[:, None, None, :], "b_a": lambda: gz}
        return {k: per[k]() for k in names}

    def recurrent_weight(self, params):
        return params["W_a"]

    def activation_gamma(self) -> float:
        return 1.0
