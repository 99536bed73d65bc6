"""Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024/2025, REFERENCES item 28): a matrix memory
per head updated by the gated delta rule, with the parameter names and shapes of
fla-org/flash-linear-attention's GatedDeltaNet layer (fla/layers/gated_deltanet.py) and the
recurrence of its naive reference (fla/ops/gated_delta_rule/naive.py, with the gate and β the
fused kernels compute: use_gate_in_kernel, use_beta_sigmoid_in_kernel, use_qk_l2norm_in_kernel).

Sizes: d = input_size, n = hidden (output width), H = heads, d_k = head_dim,
d_v = head_dim * expand_v. Per step, per head h:

    q̃, k̃, v = silu(W_q x<t>), silu(W_k x<t>), silu(W_v x<t>)   q_proj.weight, k_proj.weight (H d_k, d),
                                                                v_proj.weight (H d_v, d)
    k<t>    = k̃ / sqrt(||k̃||² + ε),  q<t> = q̃ / sqrt(||q̃||² + ε) / √d_k      (d_k,), ε = qk_norm_eps
    α<t>    = exp(-exp(A_log) softplus(W_a x<t> + dt_bias))      a_proj.weight (H, d), A_log, dt_bias (H,)
    β<t>    = σ(W_b x<t>)   (2 σ(.) with allow_neg_eigval)       b_proj.weight (H, d)
    S<t>    = α<t> (I - β<t> k<t> k<t>^T) S<t-1> + β<t> k<t> v<t>^T        (d_k, d_v)
    o<t>    = S<t>^T q<t>                                                  (d_v,)
    y<t>    = W_o [o_1; ...; o_H]                                o_proj.weight (n, H d_v)

as fla's layer without its short convolutions (use_short_conv: false, where it applies the SiLU
to the projections itself) and without the output norm and gate, which act on o<t> alone.

State [y<t>; S<t>] (n + H d_k d_v): blocks "y" (the output, not fed back: the read-out sees
it and a layer above in a stack reads it) and "state", each head's S stored as S^T (d_v x
d_k, row-major: fla's state_v_first layout), so that vec(S) is column-major and the step
Jacobian of the state block is

    d S<t>/d S<t-1> = blockdiag_h(I_{d_v} ⊗ A_h<t>),   A_h<t> = α (I - β k k^T)   (d_k x d_k, symmetric)

(nothing reads y<t-1>). The `state` path is declared through Cell.kron_factors, and the probe
chains the d_k x d_k products per head in log space (diagnostics/probing/kron.py): spectral
norm max_h σ_max(P_h), Frobenius sqrt(d_v Σ_h ||P_h||_F²), never the (H d_k d_v)² matrix.
With constant α, β and one fixed unit k (A has eigenvalues α(1 - β) along k and α, d_k - 1
times), one head gives α^k max(1, |1 - β|)^k and sqrt(d_v) α^k sqrt(d_k - 1 + (1 - β)^(2k)) at
lag k (tested, with qk_norm_eps: 0 so that ||k|| = 1 exactly).

Initialisation as fla: A_log = ln U(0, 16), dt_bias = softplus⁻¹(Δ0) with Δ0 log-uniform on
[0.001, 0.1] floored at 1e-4; the projections follow `input_init` (fla: N(0, 0.02²)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Init, InitSpec, NonNegFloat, PosFloat, PosInt, option
from .base import freeze, init_matrix, sigmoid, sigmoid_slope
from .layers import Grads, ReverseCell, silu, silu_slope, softplus
from .mamba import time_step_bias


class DeltaNetCache(NamedTuple):
    x: np.ndarray        # (B, d)
    pq: np.ndarray       # (B, H, d_k) W_q x
    pk: np.ndarray       # (B, H, d_k)
    pv: np.ndarray       # (B, H, d_v)
    qt: np.ndarray       # (B, H, d_k) silu(W_q x)
    kt: np.ndarray       # (B, H, d_k)
    nq: np.ndarray       # (B, H) sqrt(||q̃||² + ε)
    nk: np.ndarray       # (B, H)
    q: np.ndarray        # (B, H, d_k) normalised and scaled
    k: np.ndarray        # (B, H, d_k) unit (up to ε)
    v: np.ndarray        # (B, H, d_v)
    ga: np.ndarray       # (B, H) W_a x + dt_bias
    log_alpha: np.ndarray  # (B, H)
    alpha: np.ndarray    # (B, H)
    pb: np.ndarray       # (B, H) W_b x
    beta: np.ndarray     # (B, H)
    T_prev: np.ndarray   # (B, H, d_v, d_k) S<t-1>^T
    u: np.ndarray        # (B, H, d_v) S<t-1>^T k
    T: np.ndarray        # (B, H, d_v, d_k) S<t>^T
    o: np.ndarray        # (B, H d_v)


def _unnormalised(dq: np.ndarray, qt: np.ndarray, nq: np.ndarray) -> np.ndarray:
    """Rows dq (B, r, H, m) of dL/dq, q = q̃ / n, n = sqrt(||q̃||² + ε) -> dL/dq̃ = (dq - q̃ (q̃·dq) / n²) / n."""
    along = np.einsum("brhi,bhi->brh", dq, qt)[..., None]
    return (dq - (qt / nq[..., None] ** 2)[:, None] * along) / nq[:, None, :, None]


@dataclass(frozen=True)
class GatedDeltaNet(ReverseCell):
    """S<t> = α<t> (I - β<t> k<t> k<t>^T) S<t-1> + β<t> k<t> v<t>^T per head, y<t> = o_proj(S<t>^T q<t>)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(8, "output width n (fla's hidden_size); the read-out sees y<t> (n)")
    heads: PosInt = option(2, "H heads, each with its own S (d_k x d_v), α and β (num_heads)")
    head_dim: PosInt = option(4, "d_k, the key size per head")
    expand_v: PosFloat = option(2.0, "d_v = head_dim * expand_v, the value size per head (an integer)")
    allow_neg_eigval: bool = option(False, "β = 2 σ(.) in (0, 2), so I - β k k^T may reflect (eigenvalue 1 - β < 0)")
    qk_norm_eps: NonNegFloat = option(1e-6, "ε of the L2 normalisation of q and k (fla's)")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the projections")
    kind: ClassVar[str] = "gated_deltanet"
    parallel_safe: ClassVar[bool] = True
    direct_paths: ClassVar[dict[str, str]] = {}

    def check(self) -> None:
        if self.head_dim * self.expand_v != round(self.head_dim * self.expand_v):
            raise ValueError(f"expand_v: head_dim * expand_v must be an integer (head_dim {self.head_dim}), "
                             f"got {self.expand_v}")

    @property
    def dk(self) -> int:
        return self.head_dim

    @property
    def dv(self) -> int:
        return int(round(self.head_dim * self.expand_v))

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {"y": slice(0, n), "state": slice(n, n + self.heads * self.dk * self.dv)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("state",)

    @property
    def output_block(self) -> str:
        return "y"

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d, n, H, dk, dv = self.input_size, self.hidden, self.heads, self.dk, self.dv
        return freeze({
            "q_proj.weight": init_matrix(rng, self.input_init, H * dk, d, n),
            "k_proj.weight": init_matrix(rng, self.input_init, H * dk, d, n),
            "v_proj.weight": init_matrix(rng, self.input_init, H * dv, d, n),
            "a_proj.weight": init_matrix(rng, self.input_init, H, d, n),
            "b_proj.weight": init_matrix(rng, self.input_init, H, d, n),
            "A_log": np.log(rng.uniform(0.0, 16.0, size=H)),
            "dt_bias": time_step_bias(rng, H, 0.001, 0.1),
            "o_proj.weight": init_matrix(rng, self.input_init, n, H * dv, n),
        })

    def recurrent_names(self, params) -> list[str]:
        """What sets the decay α and the erasure β."""
        return ["A_log", "dt_bias", "a_proj.weight", "b_proj.weight"]

    def _beta(self, pb):
        """β and dβ/d(W_b x)."""
        f = 2.0 if self.allow_neg_eigval else 1.0
        return f * sigmoid(pb), f * sigmoid_slope(pb)

    def step(self, params, state, x):
        n, H, dk, dv = self.hidden, self.heads, self.dk, self.dv
        B = state.shape[0]
        T_prev = state[:, n:].reshape(B, H, dv, dk)
        pq = (x @ params["q_proj.weight"].T).reshape(B, H, dk)
        pk = (x @ params["k_proj.weight"].T).reshape(B, H, dk)
        pv = (x @ params["v_proj.weight"].T).reshape(B, H, dv)
        qt, kt, v = silu(pq), silu(pk), silu(pv)
        nq = np.sqrt(np.sum(qt * qt, axis=-1) + self.qk_norm_eps)
        nk = np.sqrt(np.sum(kt * kt, axis=-1) + self.qk_norm_eps)
        q = qt / nq[..., None] / math.sqrt(dk)
        k = kt / nk[..., None]
        ga = x @ params["a_proj.weight"].T + params["dt_bias"]
        log_alpha = -np.exp(params["A_log"]) * softplus(ga)
        alpha = np.exp(log_alpha)
        pb = x @ params["b_proj.weight"].T
        beta = self._beta(pb)[0]
        u = np.einsum("bhji,bhi->bhj", T_prev, k)                           # S<t-1>^T k
        T = (alpha[..., None, None] * (T_prev - beta[..., None, None] * u[..., None] * k[:, :, None, :])
             + beta[..., None, None] * v[..., None] * k[:, :, None, :])
        o = np.einsum("bhji,bhi->bhj", T, q).reshape(B, H * dv)
        y = o @ params["o_proj.weight"].T
        new = np.concatenate([y, T.reshape(B, -1)], axis=1)
        return new, DeltaNetCache(x, pq, pk, pv, qt, kt, nq, nk, q, k, v, ga, log_alpha, alpha, pb, beta, T_prev, u,
                                  T, o)

    def kron_factors(self, params, cache):
        """A_h = α (I - β k k^T) per head: the factor of S^T's rows (I_{d_v} ⊗ A_h)."""
        k = cache.k.real
        eye = np.eye(self.dk)
        erase = cache.beta.real[..., None, None] * k[..., :, None] * k[..., None, :]
        return {"state": cache.alpha.real[..., None, None] * (eye - erase)}

    def _reverse(self, params, cache: DeltaNetCache, G, grads: Grads | None, want_x: bool):
        n, H, dk, dv = self.hidden, self.heads, self.dk, self.dv
        B, r, _ = G.shape
        c = cache
        e = lambda a: a[:, None]   # noqa: E731  (B, ...) -> (B, 1, ...) over rows
        g_y = G[..., :n]
        do = (g_y @ params["o_proj.weight"]).reshape(B, r, H, dv)
        dT = G[..., n:].reshape(B, r, H, dv, dk) + do[..., None] * e(c.q)[..., None, :]
        dq = np.einsum("bhji,brhj->brhi", c.T, do)
        # T = α T_prev - α β u k^T + β v k^T, u = T_prev k
        w = np.einsum("brhji,bhi->brhj", dT, c.k)                             # dT k
        al, be = e(c.alpha), e(c.beta)
        dT_prev = al[..., None, None] * (dT - be[..., None, None] * w[..., None] * e(c.k)[..., None, :])
        dalpha = np.einsum("brhji,bhji->brh", dT, c.T_prev) - be * np.einsum("brhj,bhj->brh", w, c.u)
        dbeta = np.einsum("brhj,bhj->brh", w, c.v - c.alpha[..., None] * c.u)
        back = np.einsum("bhji,brhj->brhi", c.T_prev, w) + np.einsum("brhji,bhj->brhi", dT, c.u)
        dk_ = (-al * be)[..., None] * back + be[..., None] * np.einsum("brhji,bhj->brhi", dT, c.v)
        dv_ = be[..., None] * w
        dlog_alpha = dalpha * al
        dga = dlog_alpha * e(-np.exp(params["A_log"]) * sigmoid(c.ga))
        dpb = dbeta * e(self._beta(c.pb)[1])
        # q = q̃ / n_q / √d_k, k = k̃ / n_k: d q̃ = (dq - q̂ (q̂·dq)) / n_q with q̂ = q̃ / n_q (and the scale)
        dq = dq / math.sqrt(dk)
        dqt = _unnormalised(dq, c.qt, c.nq)
        dkt = _unnormalised(dk_, c.kt, c.nk)
        dpq = (dqt * e(silu_slope(c.pq))).reshape(B, r, H * dk)
        dpk = (dkt * e(silu_slope(c.pk))).reshape(B, r, H * dk)
        dpv = (dv_ * e(silu_slope(c.pv))).reshape(B, r, H * dv)
        if grads is not None:
            grads.outer("o_proj.weight", g_y, c.o)
            for name, dp in (("q_proj", dpq), ("k_proj", dpk), ("v_proj", dpv), ("a_proj", dga), ("b_proj", dpb)):
                grads.outer(f"{name}.weight", dp, c.x)
            grads.add("A_log", dlog_alpha * e(c.log_alpha))                  # d ln α / d A_log = ln α
            grads.add("dt_bias", dga)
        prev = np.concatenate([np.zeros((B, r, n), dtype=dT.dtype), dT_prev.reshape(B, r, -1)], axis=-1)
        g_x = None
        if want_x:
            g_x = (dpq @ params["q_proj.weight"] + dpk @ params["k_proj.weight"] + dpv @ params["v_proj.weight"]
                   + dga @ params["a_proj.weight"] + dpb @ params["b_proj.weight"])
        return prev, g_x
