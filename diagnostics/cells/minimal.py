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
is still exact in the probe's log-space chain, and so is the dense Jacobian: 1 - z is σ(-s_z)
and f' = σ(ln f - ln i) = σ(softplus(-s_i) - softplus(-s_f)), never a difference or a ratio of
rounded gates (1 - σ(40) by subtraction is 0, where σ(-40) = 4.2e-18: the dense probe read
-inf). No weight acts on h<t-1>: the parameters whose gradients the trainer splits into
temporal components are the gates' (they set the decay). Options: `update_bias` (initial b_z)
and `forget_bias` (initial b_f); the other biases start at `bias`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import Cell, diagonal_matrices, freeze, init_matrix, log_sigmoid, sigmoid


def _softplus(s):
    return np.logaddexp(0.0, s)


class MinCache(NamedTuple):
    h_prev: np.ndarray   # (B, n)
    x: np.ndarray        # (B, d)
    keep: np.ndarray     # (B, n) d h<t>/d h<t-1>: 1 - z (minGRU) or f' (minLSTM)
    take: np.ndarray     # (B, n) the weight of h~<t>, 1 - keep: z (minGRU) or i' (minLSTM)
    pre: np.ndarray      # (B, G, n) gate pre-activations (z; or f, i)
    dkeep: np.ndarray    # (B, G, n) d keep / d pre
    h_tilde: np.ndarray  # (B, n)


class _Minimal(Cell):
    """Shared layout: parameters U_<g>, b_<g> for the gates and U_h, b_h for the candidate.
    A step is h<t> = keep * h<t-1> + take * h~<t> with take = 1 - keep, keep a function of the
    gates' pre-activations (`_keep`), so d h<t>/d pre = (h<t-1> - h~<t>) d keep/d pre."""
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

    def step(self, params, state, x):
        pre = np.stack([x @ params[f"U_{g}"].T + params[f"b_{g}"] for g in self.gates], axis=1)
        keep, take, dkeep = self._keep(pre)
        h_tilde = x @ params["U_h"].T + params["b_h"]
        h = keep * state + take * h_tilde
        return h, MinCache(state, x, keep, take, pre, dkeep, h_tilde)

    def jacobian(self, params, cache):
        return diagonal_matrices(cache.keep)

    def vjp(self, params, cache, m):
        return m * cache.keep[:, None, :]

    def backward(self, params, cache, g):
        d_pre = (g * (cache.h_prev - cache.h_tilde))[:, None, :] * cache.dkeep   # (B, G, n)
        d_ht = g * cache.take                                                      # (B, n)
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
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>")
    update_bias: Finite = option(
        0.0, "b_z at initialisation: each step keeps 1 − z = σ(−b_z) of h<t-1> when the input is 0")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "mingru"
    gates: ClassVar[tuple[str, ...]] = ("z",)

    def _bias(self, gate):
        return float(self.update_bias) if gate == "z" else float(self.bias)

    def _keep(self, pre):
        keep, z = sigmoid(-pre[:, 0]), sigmoid(pre[:, 0])           # 1 - z = σ(-s_z)
        return keep, z, -(keep * z)[:, None, :]                     # d(1 - z)/ds_z = -σ'(s_z)

    def log_diagonal(self, params, cache):
        return {"a": -_softplus(cache.pre[:, 0])}


@dataclass(frozen=True)
class MinLSTM(_Minimal):
    """h<t> = f' * h<t-1> + i' * h~, f' = f / (f + i), i' = i / (f + i)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>")
    forget_bias: Finite = option(1.0, "b_f at initialisation: f′ = f/(f + i) is the per-step memory")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "minlstm"
    gates: ClassVar[tuple[str, ...]] = ("f", "i")

    def _bias(self, gate):
        return float(self.forget_bias) if gate == "f" else float(self.bias)

    def _keep(self, pre):
        # f' = f/(f+i) = σ(ln f - ln i) and i' = σ(ln i - ln f), from the gates' logs: exact
        # where f or i is tiny, or both are (no 0/0, no 1 minus a rounded f');
        # ln f' = -softplus(ln i - ln f) and d ln σ(s)/d s = σ(-s) give
        # d f'/d s_f = f' i' σ(-s_f),  d f'/d s_i = -f' i' σ(-s_i)
        d = log_sigmoid(pre[:, 0]) - log_sigmoid(pre[:, 1])
        keep, take = sigmoid(d), sigmoid(-d)
        both = keep * take
        return keep, take, np.stack([both * sigmoid(-pre[:, 0]), -both * sigmoid(-pre[:, 1])], axis=1)

    def log_diagonal(self, params, cache):
        # ln f' = -ln(1 + i/f), ln(i/f) = ln σ(s_i) - ln σ(s_f) = softplus(-s_f) - softplus(-s_i)
        s_f, s_i = cache.pre[:, 0], cache.pre[:, 1]
        return {"a": -_softplus(_softplus(-s_f) - _softplus(-s_i))}
