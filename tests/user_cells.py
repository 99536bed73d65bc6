"""A user's cells for the contract tests (tests/test_cell_contract.py) and the user's pytest
file it writes: a wide diagonal cell with no dense Jacobian, and the same with one. Each can
get one hook wrong on purpose (`wrong`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from diagnostics.cells import Cell, freeze
from diagnostics.options import PosInt

Wrong = Literal["", "jacobian", "vjp", "input_vjp", "backward", "param_vjp", "log_diagonal", "analytic"]


@dataclass(frozen=True)
class WideDiag(Cell):
    """a<t> = (1 - λ) a<t-1> + λ tanh(w * a<t-1> + U x<t> + b), elementwise: a diagonal step
    Jacobian, so log_diagonal can declare the one path and no dense Jacobian is needed.
    `wrong` names a hook to get wrong on purpose."""
    input_size: PosInt = 1
    hidden: PosInt = 4
    leak: float = 0.4
    wrong: Wrong = ""
    kind: ClassVar[str] = "wide_diag"

    def init(self, rng):
        n, d = self.hidden, self.input_size
        return freeze({"w": rng.uniform(-2.0, 2.0, n), "U": rng.normal(size=(n, d)), "b": rng.normal(size=n)})

    def step(self, params, state, x):
        z = params["w"] * state + x @ params["U"].T + params["b"]
        if self.wrong == "analytic":         # |z| is not complex-analytic: complex steps lie
            z = z + 0.1 * np.abs(z)
        t = np.tanh(z)
        return (1 - self.leak) * state + self.leak * t, (state, x, 1 - t * t)

    def _d(self, params, cache):
        """The diagonal of the step Jacobian (B, n)."""
        slope = cache[2] if self.wrong != "jacobian" else np.ones_like(cache[2])   # forgets tanh'
        return (1 - self.leak) + self.leak * params["w"] * slope

    def vjp(self, params, cache, m):
        d = self._d(params, cache) - (1 - self.leak) * (self.wrong == "vjp")    # forgets the leak
        return m * d[:, None, :]

    def input_vjp(self, params, cache, m):
        gz = m * (self.leak * cache[2])[:, None, :]
        return gz @ (params["U"] if self.wrong != "input_vjp" else 2 * params["U"])

    def backward(self, params, cache, g):
        a_prev, x, s = cache
        gz = g * self.leak * s
        grads = {"w": (gz * a_prev).sum(axis=0), "U": gz.T @ x, "b": gz.sum(axis=0)}
        if self.wrong == "backward":        # the gradient of w without the leak factor
            grads["w"] = (g * s * a_prev).sum(axis=0)
        return g * self._d(params, cache), grads, gz @ params["U"]

    def param_vjp(self, params, cache, m, names):
        a_prev, x, s = cache
        gz = m * (self.leak * s)[:, None, :]
        per = {"w": gz * a_prev[:, None, :], "U": gz[..., :, None] * x[:, None, None, :], "b": gz}
        if self.wrong == "param_vjp":
            per["b"] = per["b"][:, ::-1]      # rows swapped
        return {k: per[k] for k in names}

    def log_diagonal(self, params, cache):
        lg = np.log(np.abs(self._d(params, cache)))
        return {"a": lg + 1e-3 if self.wrong == "log_diagonal" else lg}


@dataclass(frozen=True)
class LeakyDiag(WideDiag):
    """WideDiag with its dense Jacobian too."""
    kind: ClassVar[str] = "leaky_diag"

    def jacobian(self, params, cache):
        d = self._d(params, cache)
        return d[:, :, None] * np.eye(self.hidden)
