"""sLSTM (Beck et al. 2024, "xLSTM: extended long short-term memory", section 2.2): an LSTM
with an exponential input gate, a normaliser state n<t> and a stabiliser state m<t>.

Pre-activations (gate order i, f, z, o; R block-diagonal with `heads` blocks):
    s<t> = R h<t-1> + U x<t> + b                       R = W: (4n, n)  U: (4n, d)  b: (4n,)
    ln i<t> = s_i,   ln f<t> = ln σ(s_f) (forget: sigmoid) or s_f (forget: exp)
    z<t> = tanh(s_z),   o<t> = σ(s_o)
Stabilised form implemented (the paper's eqs. 15-17, as in the official sLSTM cell):
    m<t>  = max(ln f<t> + m<t-1>, ln i<t>)             stabiliser            (B, n)
    i'<t> = exp(ln i<t> - m<t>),  f'<t> = exp(ln f<t> + m<t-1> - m<t>)     both <= 1
    c<t>  = f' * c<t-1> + i' * z<t>                     cell                  (B, n)
    n<t>  = f' * n<t-1> + i'                            normaliser            (B, n)
    h<t>  = o<t> * c<t> / n<t>                          hidden (= a<t>)       (B, n)
c and n are the paper's unstabilised c, n times exp(-m<t>), so h is the paper's h exactly.
The state is [h; c; n; m] (B, 4n), zeros at t = 0 (n<1> > 0 from the first step on).

Derivative. With sel = [ln f + m<t-1> >= ln i] (which branch the max takes) and
Δ = d ln f + d m<t-1> - d s_i:  d m = d s_i + sel Δ,  d ln f' = (1 - sel) Δ,  d ln i' = -sel Δ.
The max is not analytic at the switch, but away from it the step is analytic on each side,
and the branch is chosen by comparing real parts, so a complex step (an imaginary
perturbation) never changes branch and gives the one-sided derivative exactly: complex-step
checks apply (analytic = True); the switch set has measure zero and the tests avoid it.
For rows M = [M_h, M_c, M_n, M_m], with G_c = M_c + M_h o/n, G_n = M_n - M_h h/n,
G_Δ = G_c (f' c<t-1> (1 - sel) - i' z sel) + G_n (f' n<t-1> (1 - sel) - i' sel) + M_m sel:
    M J = [ [M_m - G_Δ, G_Δ d ln f/d s_f, G_c i'(1 - z²), M_h (c/n) σ'_o] @ R,  G_c f',  G_n f',  G_Δ ]
Paths: "a" (h-block) and "c" (c-block) of the full-state product, "state", and "c_direct",
the direct memory path Π diag(f'), from ln f' = ln f + m<t-1> - m<t> (exact in log space).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt
from .base import Cell, freeze, init_matrix, sigmoid

GATES = ("i", "f", "z", "o")


@functools.lru_cache(maxsize=16)
def _head_mask(n: int, heads: int) -> np.ndarray:
    """(4n, n) ones on each gate's per-head diagonal blocks: R is block-diagonal per head."""
    head = np.arange(n) // (n // heads)
    mask = np.tile((head[:, None] == head[None, :]).astype(float), (len(GATES), 1))
    mask.setflags(write=False)
    return mask


class SLSTMCache(NamedTuple):
    h_prev: np.ndarray   # (B, n)
    c_prev: np.ndarray
    n_prev: np.ndarray
    x: np.ndarray        # (B, d)
    fp: np.ndarray       # f'
    ip: np.ndarray       # i'
    z: np.ndarray
    o: np.ndarray
    c: np.ndarray        # c<t>
    nrm: np.ndarray      # n<t>
    h: np.ndarray        # h<t>
    sel: np.ndarray      # 1 where the max takes ln f + m<t-1>, else 0
    dlogf: np.ndarray    # d ln f / d s_f
    log_fp: np.ndarray   # ln f', real


@dataclass(frozen=True)
class SLSTM(Cell):
    """h<t> = o * c<t> / n<t> with exponential gating and a stabiliser state m<t>."""
    input_size: PosInt = 1
    hidden: PosInt = 32
    heads: PosInt = 1
    forget: Literal["sigmoid", "exp"] = "sigmoid"
    forget_bias: Finite = 1.0
    recurrent_init: InitSpec = Init("orthogonal", 1.0)
    input_init: InitSpec = Init("gaussian", 1.0)
    bias: Finite = 0.0
    kind: ClassVar[str] = "slstm"
    parallel_safe: ClassVar[bool] = True
    gates: ClassVar[tuple[str, ...]] = GATES

    def check(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"heads: must divide hidden ({self.hidden}), got {self.heads}")

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {"a": slice(0, n), "c": slice(n, 2 * n), "n": slice(2 * n, 3 * n), "m": slice(3 * n, 4 * n)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a", "c", "c_direct", "state")

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d, dh = self.hidden, self.input_size, self.hidden // self.heads
        W = np.zeros((len(GATES) * n, n))
        for g in range(len(GATES)):
            for h in range(self.heads):
                r = g * n + h * dh
                W[r:r + dh, h * dh:(h + 1) * dh] = init_matrix(rng, self.recurrent_init, dh, dh, dh)
        U = np.vstack([init_matrix(rng, self.input_init, n, d, n) for _ in GATES])
        b = np.full(len(GATES) * n, float(self.bias))
        b[n:2 * n] = self.forget_bias
        return freeze({"W": W, "U": U, "b": b})

    def _recurrent(self, params):
        W = params["W"]
        return W if self.heads == 1 else W * _head_mask(self.hidden, self.heads)

    def step(self, params, state, x):
        n = self.hidden
        h_prev, c_prev, n_prev, m_prev = (state[:, k * n:(k + 1) * n] for k in range(4))
        s = h_prev @ self._recurrent(params).T + x @ params["U"].T + params["b"]
        s_i, s_f, s_z, s_o = (s[:, k * n:(k + 1) * n] for k in range(4))
        if self.forget == "exp":
            log_f, dlogf = s_f, np.ones_like(s_f)
        else:
            sig_f = sigmoid(s_f)
            log_f = np.log(sig_f) if np.iscomplexobj(s_f) else -np.logaddexp(0.0, -s_f)
            dlogf = 1.0 - sig_f
        a = log_f + m_prev
        sel = (a.real >= s_i.real)
        m = np.where(sel, a, s_i)
        log_fp, log_ip = a - m, s_i - m
        fp, ip = np.exp(log_fp), np.exp(log_ip)
        z, o = np.tanh(s_z), sigmoid(s_o)
        c = fp * c_prev + ip * z
        nrm = fp * n_prev + ip
        h = o * c / nrm
        cache = SLSTMCache(h_prev, c_prev, n_prev, x, fp, ip, z, o, c, nrm, h,
                           sel.astype(s.dtype), dlogf, log_fp.real)
        return np.concatenate([h, c, nrm, m], axis=1), cache

    def _grads(self, cache, m):
        """(dL/ds (..., 4n), the c-, n- and m-columns of M J) for rows m (..., 4n)."""
        n = self.hidden
        lead = (m.shape[0],) + (1,) * (m.ndim - 2)
        v = lambda a: a.reshape(lead + (n,))   # noqa: E731  broadcast (B, n) over rows
        m_h, m_c, m_n, m_m = (m[..., k * n:(k + 1) * n] for k in range(4))
        sel, fp, ip = v(cache.sel), v(cache.fp), v(cache.ip)
        g_c = m_c + m_h * v(cache.o / cache.nrm)
        g_n = m_n - m_h * v(cache.h / cache.nrm)
        keep = 1.0 - sel
        g_delta = (g_c * (fp * v(cache.c_prev) * keep - ip * v(cache.z) * sel)
                   + g_n * (fp * v(cache.n_prev) * keep - ip * sel) + m_m * sel)
        o = cache.o
        ds = np.concatenate([m_m - g_delta, g_delta * v(cache.dlogf), g_c * ip * v(1.0 - cache.z ** 2),
                             m_h * v(cache.c / cache.nrm * o * (1.0 - o))], axis=-1)
        return ds, np.concatenate([g_c * fp, g_n * fp, g_delta], axis=-1)

    def vjp(self, params, cache, m):
        ds, rest = self._grads(cache, m)
        out_h = (ds.reshape(-1, ds.shape[-1]) @ self._recurrent(params)).reshape(m.shape[:-1] + (self.hidden,))
        return np.concatenate([out_h, rest], axis=-1)

    def jacobian(self, params, cache):
        B, S = cache.h.shape[0], self.state_size
        eye = np.broadcast_to(np.eye(S, dtype=cache.h.dtype), (B, S, S))
        return self.vjp(params, cache, eye)

    def backward(self, params, cache, g):
        ds, rest = self._grads(cache, g)
        R = self._recurrent(params)
        gW = ds.T @ cache.h_prev
        if self.heads > 1:
            gW = gW * _head_mask(self.hidden, self.heads)
        grads = {"W": gW, "U": ds.T @ cache.x, "b": ds.sum(axis=0)}
        return np.concatenate([ds @ R, rest], axis=1), grads, ds @ params["U"]

    def log_diagonal(self, params, cache):
        return {"c_direct": cache.log_fp}
