"""mLSTM (Beck et al. 2024, "xLSTM", REFERENCES item 27): a matrix memory C per head with
exponential gating, in the stabilised recurrent step of the official code (NX-AI/xlstm,
xlstm/blocks/mlstm/backends.py, recurrent_step_stabilized_simple) and the official cell's gate
layout (xlstm/blocks/mlstm/cell.py: the gates read [q; k; v]).

Sizes: d = input_size, n = hidden = NH DH (NH = heads, DH = n / NH). Per step, per head:

    q, k     = silu(W_q x<t>), silu(W_k x<t>),  v = W_v x<t>      q_proj.weight, k_proj.weight,
                                                                 v_proj.weight (n, d)
    ĩ<t>     = W_i [q; k; v] + b_i,  f̃<t> = W_f [q; k; v] + b_f      igate.weight, fgate.weight (NH, 3n),
                                                                    igate.bias, fgate.bias (NH,)
    m<t>     = max(ln σ(f̃) + m<t-1>, ĩ)                  stabiliser                    (NH,)
    f'       = exp(ln σ(f̃) + m<t-1> - m<t>),  i' = exp(ĩ - m<t>)
    C<t>     = f' C<t-1> + i' (k / √DH) v^T             memory                        (DH, DH)
    n<t>     = f' n<t-1> + i' k / √DH                   normaliser                    (DH,)
    h<t>     = q^T C<t> / (max(|q^T n<t>|, exp(-m<t>)) + 1e-6)       output           (DH,)

exactly the official step (C stored as there, C_ij = k_i v_j, so h = q^T C is the paper's
C q with its C = v k^T), m<0> = 0 as the official initial state. The projections are the
official layer's in short: there q and k are linear maps of SiLU(causal conv of the input) and
v of the input; here the convolution is left out and q, k take the SiLU directly. Without it
a scalar input (d = 1) would make every k<t> parallel, C rank one and h<t> = q^T C / |q^T n|
independent of q up to the 1e-6 (a degenerate cell). The output h<t> is not fed back: the
paper's output gate and the layer's norm and projections are outside the step and not
modelled; the read-out sees h<t>.

State [h<t>; C<t>; n<t>; m<t>] (n + NH DH² + n + NH): blocks "h" (the output), "C", "n", "m"
and "state" = [C; n; m], what the recurrence carries. The `state` path is the Jacobian of that
stabilised state, every route through m included, as the sLSTM's c path is of its own
(diagnostics/cells/slstm.py): with sel = [ln σ(f̃) + m<t-1> >= ĩ],
    d C<t>/d C<t-1> = f' I,   d C<t>/d m<t-1> = (1 - sel) f' C<t-1> - sel i' (k/√DH) v^T,
    d m<t>/d m<t-1> = sel, and likewise for n; nothing reads h<t-1> (zero columns).
`memory` is the direct path Π f' I (the C-block's own factors: the forget gate's product,
stabilised), from ln f' per head, exact in log space. With constant gates and m<t> = ĩ at
every step (ĩ >= ln σ(f̃) + m<t-1>), f' = σ(f̃): memory falls k log10 σ(f̃), and the state
path's product is [[f'^k I, f'^k [C; n]<t-k>], [0, 0]], whose spectral norm is
f'^k sqrt(1 + ||[C; n]<t-k>||²) per head (both tested).

The max and |.| switch branch by real parts, so a complex step keeps its branch and gives the
one-sided derivative exactly (analytic = True, as the sLSTM); the switch sets have measure zero.
Initialisation as the official cell: fgate.weight = 0, fgate.bias linearly spaced on [3, 6]
over the heads, igate.weight = 0, igate.bias ~ N(0, 0.1²); q, k, v projections `input_init`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Init, InitSpec, PosInt, option
from .base import freeze, init_matrix, log_sigmoid, sigmoid
from .layers import Grads, ReverseCell, silu, silu_slope

EPS = 1e-6   # the official step's, added to the normaliser


class MLSTMCache(NamedTuple):
    x: np.ndarray        # (B, d)
    pq: np.ndarray       # (B, n) W_q x
    pk: np.ndarray       # (B, n) W_k x
    q: np.ndarray        # (B, NH, DH)
    ks: np.ndarray       # (B, NH, DH) k / √DH
    v: np.ndarray        # (B, NH, DH)
    u: np.ndarray        # (B, 3n) [q; k; v]
    fpre: np.ndarray     # (B, NH) f̃
    C_prev: np.ndarray   # (B, NH, DH, DH)
    n_prev: np.ndarray   # (B, NH, DH)
    sel: np.ndarray      # (B, NH) 1 where m takes ln σ(f̃) + m<t-1>
    fp: np.ndarray       # (B, NH) f'
    ip: np.ndarray       # (B, NH) i'
    log_fp: np.ndarray   # (B, NH) ln f', real
    C: np.ndarray        # (B, NH, DH, DH)
    nrm: np.ndarray      # (B, NH, DH)
    hnum: np.ndarray     # (B, NH, DH) q^T C
    sign: np.ndarray     # (B, NH) sign of q^T n (by real part)
    big: np.ndarray      # (B, NH) 1 where |q^T n| >= exp(-m)
    mv: np.ndarray       # (B, NH) exp(-m<t>)
    den: np.ndarray      # (B, NH)
    h: np.ndarray        # (B, NH, DH)


@dataclass(frozen=True)
class MLSTM(ReverseCell):
    """C<t> = f' C<t-1> + i' k v^T per head, stabilised; h<t> = q^T C<t> / max(|q^T n<t>|, exp(-m<t>))."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(8, "n = heads x head size; the read-out sees h<t> (n), the memory is heads x DH x DH")
    heads: PosInt = option(1, "NH heads, each with its own C, n, m and gates (hidden must be a multiple)")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of q_proj, k_proj and v_proj")
    kind: ClassVar[str] = "mlstm"
    parallel_safe: ClassVar[bool] = True
    direct_paths: ClassVar[dict[str, str]] = {"memory": "C"}

    def check(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"heads: must divide hidden ({self.hidden}), got {self.heads}")

    @property
    def DH(self) -> int:
        return self.hidden // self.heads

    @property
    def blocks(self) -> dict[str, slice]:
        n, NH, DH = self.hidden, self.heads, self.DH
        c0 = n + NH * DH * DH
        return {"h": slice(0, n), "C": slice(n, c0), "n": slice(c0, c0 + n), "m": slice(c0 + n, c0 + n + NH),
                "state": slice(n, c0 + n + NH)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("state", "memory")

    @property
    def output_block(self) -> str:
        return "h"

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d, NH = self.hidden, self.input_size, self.heads
        return freeze({
            "q_proj.weight": init_matrix(rng, self.input_init, n, d, n),
            "k_proj.weight": init_matrix(rng, self.input_init, n, d, n),
            "v_proj.weight": init_matrix(rng, self.input_init, n, d, n),
            "igate.weight": np.zeros((NH, 3 * n)),
            "igate.bias": rng.normal(scale=0.1, size=NH),
            "fgate.weight": np.zeros((NH, 3 * n)),
            "fgate.bias": np.linspace(3.0, 6.0, NH),
        })

    def recurrent_names(self, params) -> list[str]:
        """The gates, which set the decay f'."""
        return ["fgate.weight", "fgate.bias", "igate.weight", "igate.bias"]

    def step(self, params, state, x):
        n, NH, DH = self.hidden, self.heads, self.DH
        B = state.shape[0]
        bl = self.blocks
        C_prev = state[:, bl["C"]].reshape(B, NH, DH, DH)
        n_prev = state[:, bl["n"]].reshape(B, NH, DH)
        m_prev = state[:, bl["m"]]
        pq, pk, v = (x @ params[f"{w}_proj.weight"].T for w in "qkv")
        q, k = silu(pq), silu(pk)
        u = np.concatenate([q, k, v], axis=1)
        ipre = u @ params["igate.weight"].T + params["igate.bias"]
        fpre = u @ params["fgate.weight"].T + params["fgate.bias"]
        a = log_sigmoid(fpre) + m_prev
        sel = a.real >= ipre.real                   # branches by real parts: see the docstring
        m = np.where(sel, a, ipre)
        log_fp = a - m
        fp, ip = np.exp(log_fp), np.exp(ipre - m)
        q, v = q.reshape(B, NH, DH), v.reshape(B, NH, DH)
        ks = k.reshape(B, NH, DH) / math.sqrt(DH)
        C = fp[..., None, None] * C_prev + ip[..., None, None] * ks[..., :, None] * v[..., None, :]
        nrm = fp[..., None] * n_prev + ip[..., None] * ks
        hnum = np.einsum("bhi,bhij->bhj", q, C)
        qn = np.einsum("bhi,bhi->bh", q, nrm)
        sign = np.where(qn.real >= 0, 1.0, -1.0)
        mv = np.exp(-m)
        big = (sign * qn).real >= mv.real
        den = np.where(big, sign * qn, mv) + EPS
        h = hnum / den[..., None]
        new = np.concatenate([h.reshape(B, n), C.reshape(B, -1), nrm.reshape(B, n), m], axis=1)
        f = lambda b: b.astype(float)   # noqa: E731
        return new, MLSTMCache(x, pq, pk, q, ks, v, u, fpre, C_prev, n_prev, f(sel), fp, ip, log_fp.real, C, nrm, hnum,
                               sign, f(big), mv, den, h)

    def log_diagonal(self, params, cache):
        """memory: ln f' per head, once per entry of its C."""
        return {"memory": np.repeat(cache.log_fp, self.DH * self.DH, axis=1)}

    def _reverse(self, params, cache: MLSTMCache, G, grads: Grads | None, want_x: bool):
        n, NH, DH = self.hidden, self.heads, self.DH
        B, r, _ = G.shape
        c, bl = cache, self.blocks
        e = lambda a: a[:, None]   # noqa: E731  (B, ...) -> (B, 1, ...) over rows
        g_h = G[..., bl["h"]].reshape(B, r, NH, DH)
        dC = G[..., bl["C"]].reshape(B, r, NH, DH, DH)
        dn = G[..., bl["n"]].reshape(B, r, NH, DH)
        dm = G[..., bl["m"]]
        # h = hnum / den, den = (|q n| or exp(-m)) + ε
        dhnum = g_h / e(c.den)[..., None]
        dden = -np.einsum("brhj,bhj->brh", g_h, c.h) / e(c.den)
        dqn = e(c.big * c.sign) * dden
        dm = dm - e((1.0 - c.big) * c.mv) * dden
        dC = dC + e(c.q)[..., :, None] * dhnum[..., None, :]
        dq = np.einsum("brhj,bhij->brhi", dhnum, c.C)
        dn = dn + dqn[..., None] * e(c.q)
        dq = dq + dqn[..., None] * e(c.nrm)
        dq = np.where(e(c.big)[..., None] > 0, self._dq_on_the_qn_branch(c, dq, g_h), dq)
        # C = f' C_prev + i' ks v^T,  n = f' n_prev + i' ks
        dfp = np.einsum("brhij,bhij->brh", dC, c.C_prev) + np.einsum("brhi,bhi->brh", dn, c.n_prev)
        dCk = np.einsum("brhij,bhj->brhi", dC, c.v)              # dC v
        dip = np.einsum("brhi,bhi->brh", dCk + dn, c.ks)
        dks = e(c.ip)[..., None] * (dCk + dn)
        dv = e(c.ip)[..., None] * np.einsum("brhij,bhi->brhj", dC, c.ks)
        # f' = exp(ln σ(f̃) + m_prev - m), i' = exp(ĩ - m), m = sel (ln σ(f̃) + m_prev) + (1 - sel) ĩ
        a_f, a_i = dfp * e(c.fp), dip * e(c.ip)
        dm = dm - a_f - a_i
        dlogf = a_f + e(c.sel) * dm
        dm_prev = a_f + e(c.sel) * dm
        dipre = a_i + e(1.0 - c.sel) * dm
        dfpre = dlogf * e(sigmoid(-c.fpre))
        du = dipre @ params["igate.weight"] + dfpre @ params["fgate.weight"]
        dq = (dq.reshape(B, r, n) + du[..., :n]) * e(silu_slope(c.pq))
        dk = (dks.reshape(B, r, n) / math.sqrt(DH) + du[..., n:2 * n]) * e(silu_slope(c.pk))
        dv = dv.reshape(B, r, n) + du[..., 2 * n:]
        if grads is not None:
            grads.outer("igate.weight", dipre, c.u)
            grads.add("igate.bias", dipre)
            grads.outer("fgate.weight", dfpre, c.u)
            grads.add("fgate.bias", dfpre)
            for w, dw in zip("qkv", (dq, dk, dv)):
                grads.outer(f"{w}_proj.weight", dw, c.x)
        prev = np.concatenate([np.zeros((B, r, n), dtype=dC.dtype), (dC * e(c.fp)[..., None, None]).reshape(B, r, -1),
                               (dn * e(c.fp)[..., None]).reshape(B, r, n), dm_prev], axis=-1)
        g_x = None
        if want_x:
            g_x = sum(dw @ params[f"{w}_proj.weight"] for w, dw in zip("qkv", (dq, dk, dv)))
        return prev, g_x

    @staticmethod
    def _dq_on_the_qn_branch(c: MLSTMCache, dq: np.ndarray, g_h: np.ndarray) -> np.ndarray:
        """dq where den = |q^T n| + ε. Its component along q, q^T dq = (q^T C g)(den - |q^T n|) / den²
        = (g^T h) ε / den, is the difference of two terms ~ε/den apart when formed as above (the
        scale of q moves h only through ε): ~eps/ε relative error, all of dq at one unit per head.
        Taken here in closed form; the rest, P⊥ dq (P⊥ = I - q̂ q̂^T), has no such cancellation
        and is exactly zero at one unit (q̂ = ±1 exactly: sqrt(q²) = |q| in binary floating point)."""
        e = lambda a: a[:, None]   # noqa: E731
        norm = np.sqrt(np.einsum("bhi,bhi->bh", c.q, c.q))     # not conjugated: complex-safe
        norm = np.where(c.big > 0, norm, 1.0)                  # q may be 0 off this branch
        qh = e(c.q / norm[..., None])
        along = np.einsum("brhj,bhj->brh", g_h, c.h) * e(EPS / (c.den * norm))
        perp = dq - qh * np.einsum("brhi,brhi->brh", qh, dq)[..., None]
        return perp + qh * along[..., None]
