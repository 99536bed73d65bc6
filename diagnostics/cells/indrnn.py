"""IndRNN (Li et al. 2018, "Independently recurrent neural network"): each unit has one
recurrent weight, so the recurrence is a vector, not a matrix.

    z<t> = U_a x<t> + u * a<t-1> + b_a       u: (n,)  U_a: (n, d)  b_a: (n,)   z<t>: (B, n)
    a<t> = g(z<t>)                           g in {relu, tanh, linear};        a<t>: (B, n)

    d a<t> / d a<t-1> = diag(g'(z<t>) u)     (B, n, n), diagonal

u is stored as `W_a` (the diagonal of an RNN's W_a), so the trainer finds it as the
recurrent weight and the Pascanu bound reads diag(u): γ max|u|, exact for this cell.
Initialisation: u ~ U[recurrent_min, recurrent_max]. With linear g and u constant the
Jacobian product over k steps is diag(u^k): log10 norm k log10|u| (tested).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import Cell, diagonal_matrices, freeze, init_matrix, tanh_slope

ACTIVATIONS = ("relu", "tanh", "linear")


class IndRNNCache(NamedTuple):
    a_prev: np.ndarray   # (B, n)
    x: np.ndarray        # (B, d)
    z: np.ndarray        # (B, n) pre-activation, for an exact log of g'
    gp: np.ndarray       # (B, n) g'(z)


@dataclass(frozen=True)
class IndRNN(Cell):
    """a<t> = g(U_a x<t> + u * a<t-1> + b_a), u a vector."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>; the recurrent weight u is a vector")
    activation: Literal[ACTIVATIONS] = option("relu", "g: relu, tanh or linear")
    recurrent_min: Finite = option(0.0, "u ~ U[recurrent_min, recurrent_max]: each unit's recurrent weight")
    recurrent_max: Finite = option(1.0, "u ~ U[recurrent_min, recurrent_max]: each unit's recurrent weight")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "indrnn"
    parallel_safe: ClassVar[bool] = True

    def check(self) -> None:
        if self.recurrent_max < self.recurrent_min:
            raise ValueError(f"recurrent_max: must be >= recurrent_min ({self.recurrent_min}), "
                             f"got {self.recurrent_max}")

    @property
    def analytic(self) -> bool:
        return self.activation != "relu"

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d = self.hidden, self.input_size
        return freeze({
            "W_a": rng.uniform(self.recurrent_min, self.recurrent_max, size=n),
            "U_a": init_matrix(rng, self.input_init, n, d, n),
            "b_a": np.full(n, float(self.bias)),
        })

    def step(self, params, state, x):
        z = params["W_a"] * state + x @ params["U_a"].T + params["b_a"]
        if self.activation == "tanh":   # tanh' from z: 1 - a² is 0 from |z| ~ 19 (base.tanh_slope)
            a, gp = np.tanh(z), tanh_slope(z)
        elif self.activation == "relu":
            a, gp = np.maximum(z, 0.0), (z > 0).astype(z.dtype)
        else:
            a, gp = z, np.ones_like(z)
        return a, IndRNNCache(state, x, z, gp)

    def _diag(self, params, cache):
        return cache.gp * params["W_a"]

    def jacobian(self, params, cache):
        return diagonal_matrices(self._diag(params, cache))

    def vjp(self, params, cache, m):
        return m * self._diag(params, cache)[:, None, :]

    def backward(self, params, cache, g):
        gz = g * cache.gp
        grads = {"W_a": (gz * cache.a_prev).sum(axis=0), "U_a": gz.T @ cache.x, "b_a": gz.sum(axis=0)}
        return gz * params["W_a"], grads, gz @ params["U_a"]

    def param_vjp(self, params, cache, m, names):
        """backward's parameter gradients kept per sequence and row (B, r, ...), not summed."""
        gz = m * cache.gp[:, None, :]
        per = {"W_a": lambda: gz * cache.a_prev[:, None, :],
               "U_a": lambda: gz[..., :, None] * cache.x[:, None, None, :], "b_a": lambda: gz}
        return {k: per[k]() for k in names}

    def log_diagonal(self, params, cache):
        with np.errstate(divide="ignore"):
            log_u = np.log(np.abs(params["W_a"]))
            if self.activation == "tanh":
                # ln sech²z from z itself: 1 - tanh² loses its relative precision for |z| > ~3
                # and underflows to 0 near |z| = 19, where this stays exact
                # (in place: at n = 4,096 this runs once per sequence-lag in the probe)
                az = np.abs(cache.z)
                e = np.multiply(az, -2.0)
                np.exp(e, out=e)
                np.log1p(e, out=e)
                e += az
                e *= -2.0
                e += 2.0 * np.log(2.0) + log_u
                return {"a": e}
            return {"a": np.log(cache.gp) + log_u}   # relu: g' = 0 -> -inf, an exact zero

    def recurrent_weight(self, params):
        return np.diag(params["W_a"])

    def activation_gamma(self) -> float:
        return 1.0
