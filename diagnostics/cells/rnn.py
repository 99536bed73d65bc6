"""Plain (Elman) RNN cell.

    z<t>  = W_a a<t-1> + U_a x<t> + b_a          W_a: (n, n)  U_a: (n, d)  b_a: (n,)
    a<t>  = g(z<t>)                              g in {tanh, relu, linear};  a<t>: (B, n)

    d a<t> / d a<t-1> = diag(g'(z<t>)) W_a       (B, n, n)

The Pascanu bound uses γ = sup |g'| = 1 for all three activations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Cell, Init, as_init, finite_float, freeze, init_matrix, positive_int

ACTIVATIONS = ("tanh", "relu", "linear")


@dataclass(frozen=True)
class RNN(Cell):
    input_size: int = 1
    hidden: int = 32
    activation: str = "tanh"
    recurrent_init: Any = field(default_factory=lambda: Init("orthogonal", 1.0))
    input_init: Any = field(default_factory=lambda: Init("gaussian", 1.0))
    bias: float = 0.0
    kind: str = field(default="rnn", init=False)  # fixed per class, not an option
    parallel_safe: ClassVar[bool] = True   # pure: the probe may split a batch over workers

    def __post_init__(self):
        object.__setattr__(self, "input_size", positive_int("input_size", self.input_size))
        object.__setattr__(self, "hidden", positive_int("hidden", self.hidden))
        object.__setattr__(self, "bias", finite_float("bias", self.bias))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        object.__setattr__(self, "recurrent_init", as_init(self.recurrent_init, Init("orthogonal", 1.0), "recurrent_init"))
        object.__setattr__(self, "input_init", as_init(self.input_init, Init("gaussian", 1.0), "input_init"))

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
        if self.activation == "tanh":
            a = np.tanh(z)
            return a, 1.0 - a * a
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

    def backward(self, params, cache, g):
        a_prev, x, gp = cache
        gz = g * gp
        grads = {"W_a": gz.T @ a_prev, "U_a": gz.T @ x, "b_a": gz.sum(axis=0)}
        return gz @ params["W_a"], grads, gz @ params["U_a"]

    def recurrent_weight(self, params):
        return params["W_a"]

    def activation_gamma(self) -> float:
        return 1.0
