"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"): gates and candidate
read the input only, so the recurrence is element-wise and h<t> is a linear function of
h<t-1>. The state is h<t> = a<t>, (B, n).

minGRU:
    z<t>  = σ(U_z x<t> + b_z)                        update gate             (B, n)
    h~<t> = U_h x<t> + b_h                           candidate               (B, n)
    h<t>  = (1 - z<t>) * h<t-1> + z<t> * h~<t>
    d h<t>/d h<t-1> = diag(1 - z<t>),   ln(1 - z) = -softplus(U_z x + b_z)
minLSTM:
    f<t> = σ(U_f x<t> + b_f),  i<t> = σ(U_i x<t> + b_i),  h~<t> = U_h x<t> + b_h
    f'<t> = f / (f + i),  i'<t> = i / (f + i)        (time-independent normalisation)
    h<t>  = f' * h<t-1> + i' * h~<t>
    d h<t>/d h<t-1> = diag(f'),   ln f' = -softplus(softplus(-s_f) - softplus(-s_i))
U_*: (n, d), b_*: (n,). The logs are formed from the pre-activations, so a gate of 1e-300
is still exact in the probe's log-space chain. No weight acts on h<t-1>: the parameters
whose gradients the trainer splits into temporal components are the gates' (they set the
decay). Options: `update_bias` (initial b_z) and `forget_bias` (initial b_f); the other
biases start at `bias`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt
from .base import Cell, diagonal_matrices, freeze, init_matrix, sigmoid


def _softplus(s):
    return np.logaddexp(0.0, s)


class MinCache(NamedTuple):
    h_prev: np.ndarray   # (B, n)
    x: np.ndarray        # (B, d)
    keep: np.ndarray     # (B, n) d h<t>/d h<t-1>: 1 - z (minGRU) or f' (minLSTM)
    pre: np.ndarray      # (B, G, n) gate pre-activations (z; or f, i)
    gates: np.ndarray    # (B, G, n) the gates themselves
    h_tilde: np.ndarray  # (B, n)


class _Minimal(Cell):
    """Shared layout: parameters U_<g>, b_<g> for the gates and U_h, b_h for the candidate."""
    gates: ClassVar[tuple[str, ...]] = ()
    parallel_safe: ClassVar[bool] = True

    def _bias(self, gate: str) -> float:
        return float(self.bias)

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d = self.hidden, self.input_size
        p = {}
        for g in self.gates + ("h",):
            p[f"U_{g}"] = init_matrix(rng, self.input_init, n, d, n)
            p[f"b_{g}"] = np.full(n, self._bias(g))
        return freeze(p)

    def _pre(self, params, x):
        return np.stack([x @ params[f"U_{g}"].T + params[f"b_{g}"] for g in self.gates], axis=1)

    def jacobian(self, params, cache):
        return diagonal_matrices(cache.keep)

    def vjp(self, params, cache, m):
        return m * cache.keep[:, None, :]

    def backward(self, params, cache, g):
        d_pre = self._d_pre(cache, g)          # (B, G, n)
        d_ht = self._d_htilde(cache, g)        # (B, n)
        grads, g_x = {}, d_ht @ params["U_h"]
        grads["U_h"], grads["b_h"] = d_ht.T @ cache.x, d_ht.sum(axis=0)
        for i, name in enumerate(self.gates):
            grads[f"U_{name}"], grads[f"b_{name}"] = d_pre[:, i].T @ cache.x, d_pre[:, i].sum(axis=0)
            g_x = g_x + d_pre[:, i] @ params[f"U_{name}"]
        return g * cache.keep, grads, g_x

    def recurrent_names(self, params) -> list[str]:
        return sorted(k for k in params if k[2:] in self.gates)


@dataclass(frozen=True)
class MinGRU(_Minimal):
    """h<t> = (1 - z) * h<t-1> + z * h~, z = σ(U_z x + b_z), h~ = U_h x + b_h."""
    input_size: PosInt = 1
    hidden: PosInt = 32
    update_bias: Finite = 0.0
    input_init: InitSpec = Init("gaussian", 1.0)
    bias: Finite = 0.0
    kind: ClassVar[str] = "mingru"
    gates: ClassVar[tuple[str, ...]] = ("z",)

    def _bias(self, gate):
        return float(self.update_bias) if gate == "z" else float(self.bias)

    def step(self, params, state, x):
        pre = self._pre(params, x)
        z = sigmoid(pre)
        h_tilde = x @ params["U_h"].T + params["b_h"]
        keep = 1.0 - z[:, 0]
        h = keep * state + z[:, 0] * h_tilde
        return h, MinCache(state, x, keep, pre, z, h_tilde)

    def _d_pre(self, cache, g):
        z = cache.gates[:, 0]
        return (g * (cache.h_tilde - cache.h_prev) * z * (1.0 - z))[:, None, :]

    def _d_htilde(self, cache, g):
        return g * cache.gates[:, 0]

    def log_diagonal(self, params, cache):
        return {"a": -_softplus(cache.pre[:, 0])}


@dataclass(frozen=True)
class MinLSTM(_Minimal):
    """h<t> = f' * h<t-1> + i' * h~, f' = f / (f + i), i' = i / (f + i)."""
    input_size: PosInt = 1
    hidden: PosInt = 32
    forget_bias: Finite = 1.0
    input_init: InitSpec = Init("gaussian", 1.0)
    bias: Finite = 0.0
    kind: ClassVar[str] = "minlstm"
    gates: ClassVar[tuple[str, ...]] = ("f", "i")

    def _bias(self, gate):
        return float(self.forget_bias) if gate == "f" else float(self.bias)

    def step(self, params, state, x):
        pre = self._pre(params, x)
        fi = sigmoid(pre)
        f, i = fi[:, 0], fi[:, 1]
        total = f + i
        keep = f / total
        h_tilde = x @ params["U_h"].T + params["b_h"]
        h = keep * state + (i / total) * h_tilde
        return h, MinCache(state, x, keep, pre, fi, h_tilde)

    def _d_pre(self, cache, g):
        # h = f' h<t-1> + (1 - f') h~ and f' = f/(f+i): d f'/d s_f = f(1-f) i/(f+i)²,
        # d f'/d s_i = -f i(1-i)/(f+i)²
        f, i = cache.gates[:, 0], cache.gates[:, 1]
        common = g * (cache.h_prev - cache.h_tilde) * f * i / (f + i) ** 2
        return np.stack([common * (1.0 - f), -common * (1.0 - i)], axis=1)

    def _d_htilde(self, cache, g):
        return g * (1.0 - cache.keep)

    def log_diagonal(self, params, cache):
        # ln f' = -ln(1 + i/f), ln(i/f) = ln σ(s_i) - ln σ(s_f) = softplus(-s_f) - softplus(-s_i)
        s_f, s_i = cache.pre[:, 0], cache.pre[:, 1]
        return {"a": -_softplus(_softplus(-s_f) - _softplus(-s_i))}
