"""Mamba-2 (Dao & Gu 2024, REFERENCES item 26): one Mamba-2 layer's mixer in its recurrent
form, with the parameter names and shapes of transformers' Mamba2Mixer (whose state_dict
entries, without their "backbone.layers.{i}.mixer." prefix, are this cell's parameters).

Sizes: d = input_size, n = hidden (the output width; transformers' hidden_size), E = expand n
(intermediate_size), H = heads (num_heads), P = E / H (head_dim), G = groups (n_groups),
N = d_state (state_size), K = d_conv (conv_kernel), X = E + 2 G N (conv_dim). Per step:

    [z; xBC; δ] = W_in x<t> (+ b_in)                    in_proj.weight (E + X + H, d)   z (E,), δ (H,)
    xBC'    = silu(causal conv of xBC)                  conv1d.weight (X, 1, K), conv1d.bias (X,)
    [x; B; C] = xBC'                                    x (H, P), B, C (G, N): head h reads group h G / H
    Δ<t>    = softplus(δ + dt_bias)                     dt_bias (H,)
    a       = -exp(A_log)                               A_log (H,)
    H_h<t>  = exp(Δ_h a_h) H_h<t-1> + Δ_h x_h B_g^T       (P, N) per head h
    y_s     = H_h<t> C_g + D_h x_h                      D (H,)                          (E,)
    v       = y_s * silu(z);  y_n = norm.weight * v / sqrt(mean(v²) + ε)      norm.weight (E,)
    y<t>    = W_out y_n (+ b_out)                       out_proj.weight (n, E)          (n,)

as Mamba2Mixer.torch_forward's one-token branch (the time-step clamp to time_step_limit is left
out: at its default (0, inf) it does nothing; the gated RMSNorm is MambaRMSNormGated, the gate
applied before the normalisation, over all E channels, ε = norm_eps).

State [y<t>; H<t>; buf<t>] (n + H P N + X (K - 1)): blocks "y" (the output, not fed back),
"state" (H<t>, (h, p, s) row-major) and "conv" (the convolution's last K - 1 inputs, (i, j)
row-major, oldest first), as in the Mamba cell (diagnostics/cells/mamba.py), whose docstring
says why the buffer is state and why the step Jacobian is block upper-triangular. The
`state` path is

    d H<t>/d H<t-1> = exp(Δ<t>_h a_h) I   per head   (P N copies of one scalar per head)

so it takes the probe's diagonal fast path, ln|d| = Δ_h a_h repeated P N times per head; with
the δ rows of in_proj zero, Δ_h = softplus(dt_bias_h) and the spectral norm falls
k max_h softplus(dt_bias_h) a_h log10(e) decades (tested).

Initialisation as transformers: A_log = ln(1..H), D = 1, dt_bias = softplus⁻¹(Δ0), Δ0 log-uniform
on [dt_min, dt_max] floored at 1e-4, norm.weight = 1, conv1d.weight ~ U(±1/√K), conv1d.bias =
0; in_proj and out_proj follow `input_init` (transformers: N(0, 0.1²)). d_state defaults to 16
(transformers: 128) for the toolkit's small layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Init, InitSpec, NonNegInt, PosFloat, PosInt, option
from .base import freeze, init_matrix, sigmoid
from .layers import Grads, silu, silu_slope, softplus
from .mamba import ConvMixer, time_step_bias


class Mamba2Cache(NamedTuple):
    x: np.ndarray        # (B, d)
    z: np.ndarray        # (B, E)
    window: np.ndarray   # (B, X, K)
    c: np.ndarray        # (B, X) conv output
    xh: np.ndarray       # (B, H, P)
    Bg: np.ndarray       # (B, H, N) B of each head's group
    Cg: np.ndarray       # (B, H, N)
    pre: np.ndarray      # (B, H) δ + dt_bias
    delta: np.ndarray    # (B, H)
    a: np.ndarray        # (H,)
    dA: np.ndarray       # (B, H) exp(Δ a)
    h_prev: np.ndarray   # (B, H, P, N)
    h: np.ndarray        # (B, H, P, N)
    yss: np.ndarray      # (B, E)
    v: np.ndarray        # (B, E) yss * silu(z)
    rms: np.ndarray      # (B, 1) 1 / sqrt(mean(v²) + ε)
    yn: np.ndarray       # (B, E)


@dataclass(frozen=True)
class Mamba2(ConvMixer):
    """One Mamba-2 mixer: H_h<t> = exp(Δ_h a_h) H_h<t-1> + Δ_h x_h B^T per head, y<t> = out_proj(norm(...))."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(8, "output width n (transformers' hidden_size); the read-out sees y<t> (n)")
    expand: PosInt = option(2, "E = expand * hidden channels (intermediate_size)")
    heads: PosInt = option(2, "H heads, one decay exp(Δ_h a_h) each; head_dim P = E / H (num_heads)")
    groups: PosInt = option(1, "G groups sharing B and C (n_groups); must divide heads")
    d_state: PosInt = option(16, "N, the state coordinates per head channel (transformers' state_size)")
    d_conv: NonNegInt = option(4, "K of the causal convolution over [x; B; C], whose last K - 1 inputs are in the "
                                  "state; 0: no convolution (transformers' conv_kernel)")
    use_bias: bool = option(False, "biases on in_proj and out_proj")
    use_conv_bias: bool = option(True, "a bias on the convolution")
    norm_eps: PosFloat = option(1e-5, "ε of the gated RMSNorm (transformers' layer_norm_epsilon)")
    dt_min: PosFloat = option(0.001, "Δ at initialisation is log-uniform on [dt_min, dt_max]")
    dt_max: PosFloat = option(0.1, "Δ at initialisation is log-uniform on [dt_min, dt_max]")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of in_proj and out_proj")
    kind: ClassVar[str] = "mamba2"
    parallel_safe: ClassVar[bool] = True
    direct_paths: ClassVar[dict[str, str]] = {}

    def check(self) -> None:
        if self.E % self.heads:
            raise ValueError(f"heads: must divide expand * hidden ({self.E}), got {self.heads}")
        if self.heads % self.groups:
            raise ValueError(f"groups: must divide heads ({self.heads}), got {self.groups}")
        if self.dt_max < self.dt_min:
            raise ValueError(f"dt_max: must be >= dt_min ({self.dt_min}), got {self.dt_max}")

    # --- sizes and layout -------------------------------------------------------------
    @property
    def E(self) -> int:
        return self.expand * self.hidden

    @property
    def P(self) -> int:
        return self.E // self.heads

    @property
    def X(self) -> int:
        return self.E + 2 * self.groups * self.d_state

    @property
    def conv_channels(self) -> int:
        return self.X

    @property
    def state_width(self) -> int:
        return self.E * self.d_state

    # --- parameters -----------------------------------------------------------------
    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d, n, E, H, X = self.input_size, self.hidden, self.E, self.heads, self.X
        p = {"in_proj.weight": init_matrix(rng, self.input_init, E + X + H, d, n)}
        if self.use_bias:
            p["in_proj.bias"] = np.zeros(E + X + H)
        self._init_conv(rng, p)
        p["dt_bias"] = time_step_bias(rng, H, self.dt_min, self.dt_max)
        p["A_log"] = np.log(np.arange(1, H + 1, dtype=float))
        p["D"] = np.ones(H)
        p["norm.weight"] = np.ones(E)
        p["out_proj.weight"] = init_matrix(rng, self.input_init, n, E, n)
        if self.use_bias:
            p["out_proj.bias"] = np.zeros(n)
        return freeze(p)

    def recurrent_names(self, params) -> list[str]:
        """What sets the decay exp(Δ_h a_h) (besides in_proj's δ rows): A_log and dt_bias."""
        return ["A_log", "dt_bias"]

    def _group(self, v: np.ndarray) -> np.ndarray:
        """(B, G, N) -> (B, H, N): each head reads its group's B or C (repeat_interleave)."""
        return np.repeat(v, self.heads // self.groups, axis=1)

    # --- the step -------------------------------------------------------------------
    def step(self, params, state, x):
        n, E, H, P, G, N, X = self.hidden, self.E, self.heads, self.P, self.groups, self.d_state, self.X
        Bn = state.shape[0]
        h_prev = state[:, n:n + E * N].reshape(Bn, H, P, N)
        proj = x @ params["in_proj.weight"].T
        if self.use_bias:
            proj = proj + params["in_proj.bias"]
        z, xbc, dt = proj[:, :E], proj[:, E:E + X], proj[:, E + X:]
        c, window = self._conv(params, state, xbc)
        act = silu(c)
        xh = act[:, :E].reshape(Bn, H, P)
        Bg = self._group(act[:, E:E + G * N].reshape(Bn, G, N))
        Cg = self._group(act[:, E + G * N:].reshape(Bn, G, N))
        pre = dt + params["dt_bias"]
        delta = softplus(pre)
        a = -np.exp(params["A_log"])
        dA = np.exp(delta * a)
        h = dA[:, :, None, None] * h_prev + (delta[:, :, None] * xh)[..., None] * Bg[:, :, None, :]
        yss = (np.einsum("bhps,bhs->bhp", h, Cg) + params["D"][:, None] * xh).reshape(Bn, E)
        v = yss * silu(z)
        rms = 1.0 / np.sqrt(np.mean(v * v, axis=1, keepdims=True) + self.norm_eps)
        yn = params["norm.weight"] * v * rms
        y = yn @ params["out_proj.weight"].T
        if self.use_bias:
            y = y + params["out_proj.bias"]
        return self._new_state(y, h, window), Mamba2Cache(x, z, window, c, xh, Bg, Cg, pre, delta, a, dA, h_prev, h, yss, v, rms, yn)

    def log_diagonal(self, params, cache):
        """ln|exp(Δ_h a_h)| = Δ_h a_h, once per coordinate (p, s) of head h."""
        B = cache.delta.shape[0]
        per_head = (cache.delta * cache.a).real
        return {"state": np.repeat(per_head, self.P * self.d_state, axis=1).reshape(B, -1)}

    # --- the reverse pass (layers.ReverseCell) ----------------------------------------
    def _reverse(self, params, cache: Mamba2Cache, G, grads: Grads | None, want_x: bool):
        n, E, H, P, Gr, N = self.hidden, self.E, self.heads, self.P, self.groups, self.d_state
        B, r, _ = G.shape
        c = cache
        g_y = G[..., :n]
        g_h = G[..., n:n + E * N].reshape(B, r, H, P, N)
        dyn = g_y @ params["out_proj.weight"]                                  # (B, r, E)
        w = params["norm.weight"]
        # y_n = w v ρ, ρ = (mean(v²) + ε)^-½: dv = ρ w dyn - ρ³ v Σ(w dyn v) / E
        wd = dyn * w
        along = np.sum(wd * c.v[:, None], -1, keepdims=True)
        dv = wd * c.rms[:, None] - (c.rms ** 3)[:, None] * c.v[:, None] * along / E
        dyss = (dv * silu(c.z)[:, None]).reshape(B, r, H, P)
        dz = dv * (c.yss * silu_slope(c.z))[:, None]
        dh = g_h + dyss[..., None] * c.Cg[:, None, :, None, :]               # dL/dH<t>, every route
        dCg = np.einsum("brhp,bhps->brhs", dyss, c.h)
        dxh = dyss * params["D"][:, None]
        dlog = np.einsum("brhps,bhps->brh", dh, c.h_prev) * c.dA[:, None]     # dL/d(Δ a) per head
        q = np.einsum("brhps,bhs->brhp", dh, c.Bg)
        ddelta = dlog * c.a + np.einsum("brhp,bhp->brh", q, c.xh)
        dxh = dxh + q * c.delta[:, None, :, None]
        dBg = np.einsum("brhps,bhp->brhs", dh, c.delta[:, :, None] * c.xh)
        dpre = ddelta * sigmoid(c.pre)[:, None]
        ungroup = lambda v: v.reshape(B, r, Gr, H // Gr, N).sum(axis=3).reshape(B, r, Gr * N)   # noqa: E731
        dact = np.concatenate([dxh.reshape(B, r, E), ungroup(dBg), ungroup(dCg)], axis=-1)
        act_pre = dact * silu_slope(c.c)[:, None]
        dxbc, g_buf_prev = self._conv_reverse(params, act_pre, G, c.window, grads)
        dproj = np.concatenate([dz, dxbc, dpre], axis=-1)
        if grads is not None:
            grads.outer("out_proj.weight", g_y, c.yn)
            grads.add("out_proj.bias", g_y)
            grads.add("norm.weight", dyn * (c.v * c.rms)[:, None])
            grads.add("D", np.einsum("brhp,bhp->brh", dyss, c.xh))
            grads.add("A_log", dlog * (c.delta * c.a)[:, None])                 # d(Δ a)/d A_log = Δ a
            grads.add("dt_bias", dpre)
            grads.outer("in_proj.weight", dproj, c.x)
            grads.add("in_proj.bias", dproj)
        return self._prev(dh * c.dA[:, None, :, None, None], g_buf_prev), (dproj @ params["in_proj.weight"] if want_x else None)
