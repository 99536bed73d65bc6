"""Mamba (Gu & Dao 2023, REFERENCES item 25): one Mamba layer's mixer, the selective scan,
with the parameter names and shapes of transformers' MambaMixer, so that a MambaMixer's
state_dict entries (without their "backbone.layers.{i}.mixer." prefix) are this cell's
parameters as they are.

Sizes (options named as state-spaces/mamba's Mamba: d_state, d_conv, expand, dt_rank, dt_min,
dt_max; transformers' MambaConfig calls them state_size, conv_kernel, expand, time_step_rank,
time_step_min, time_step_max): d = input_size, n = hidden (the output width; a transformers
layer has d = n = hidden_size), E = expand n (intermediate_size), N = d_state, R = dt_rank
(ceil(n / 16) for "auto"), K = d_conv. Per step, for each sequence:

    [u; z]  = W_in x<t> (+ b_in)                        in_proj.weight (2E, d)            u, z: (E,)
    c       = Σ_j window[:, j] w_c[:, 0, j] + b_c         conv1d.weight (E, 1, K), conv1d.bias (E,)
              window = [buf<t-1>, u] (E, K), the K - 1 previous u's oldest first
    x_c     = silu(c)          (K = 0: no convolution, x_c = silu(u))                     (E,)
    [δ; B<t>; C<t>] = W_x x_c                           x_proj.weight (R + 2N, E)      δ (R,), B, C (N,)
    Δ<t>    = softplus(W_Δ δ + b_Δ)                     dt_proj.weight (E, R), dt_proj.bias (E,)
    A       = -exp(A_log)                               A_log (E, N)
    h<t>    = exp(Δ<t> A) * h<t-1> + (Δ<t> x_c) B<t>^T    (E, N), exp(Δ A) per channel and state
    y_s     = h<t> C<t> + D * x_c                        D (E,)                                (E,)
    y<t>    = W_out (y_s * silu(z)) (+ b_out)           out_proj.weight (n, E)                (n,)

as MambaMixer.slow_forward, one token at a time (and state-spaces/mamba's selective_scan_ref).

State [y<t>; h<t>; buf<t>] (n + E N + E (K - 1)): blocks "y" (the output, not fed back: the
read-out sees it and a layer above in a stack reads it), "state" (h, row-major (e, s)) and
"conv" (the convolution's buffer, (e, j) row-major, j = 0 the oldest of the last K - 1 u's;
transformers' conv_states less its newest column). The buffer is part of the state because
c<t> reads u<t-K+1> ... u<t-1>: a perturbation of the state at t-k reaches h<t> through it.
Nothing reads y<t-1>, h<t-1> does not enter buf<t> and buf<t> is a shift of buf<t-1> and u<t>,
so the step Jacobian on [y; h; buf] is block upper-triangular:

    d h<t>/d h<t-1> = diag(exp(Δ<t> A))   (E N, E N), d y<t>/d y<t-1> = 0, d buf<t>/d buf<t-1> a shift

and the h-block of a k-step product is Π diag(exp(Δ A)) exactly: the `state` path,
d h<t>/d h<t-k>, takes the probe's diagonal fast path with ln|d| = Δ<t> A (no rounding of the
exponential). With a zero dt_proj weight Δ = softplus(b_Δ) is constant and the spectral norm
is k max_(e,s) softplus(b_Δ,e) A_es log10(e) decades (tested). The buffer's own product is
zero from lag K - 1 on; the routes through it show in a stack's "state" path.

Initialisation as transformers' MambaPreTrainedModel: A_log = ln(1..N) on every row (S4D real),
D = 1, dt_proj.weight ~ U(±R^-½), dt_proj.bias = softplus⁻¹(Δ0) with Δ0 log-uniform on
[dt_min, dt_max] (floored at 1e-4), conv1d.weight ~ U(±1/√K), conv1d.bias = 0.
in_proj, x_proj and out_proj follow `input_init` (Gaussian, std 1/√fan_in), where transformers
draws N(0, 0.1²) (its initializer_range). The layer's RMSNorm and residual (MambaBlock) are
not part of the mixer, nor of this cell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, Union

import numpy as np

from ..options import Init, InitSpec, NonNegInt, PosFloat, PosInt, option
from .base import freeze, init_matrix, sigmoid
from .layers import Grads, ReverseCell, causal_conv, causal_conv_reverse, inverse_softplus, silu, silu_slope, softplus


class MambaCache(NamedTuple):
    x: np.ndarray        # (B, d)
    z: np.ndarray        # (B, E) gate pre-activation
    window: np.ndarray   # (B, E, K) the convolution's inputs (K = 0: (B, E, 0))
    c: np.ndarray        # (B, E) conv output (u when K = 0)
    xc: np.ndarray       # (B, E) silu(c)
    dtr: np.ndarray      # (B, R)
    Bv: np.ndarray       # (B, N)
    Cv: np.ndarray       # (B, N)
    s: np.ndarray        # (B, E) Δ pre-activation
    delta: np.ndarray    # (B, E) Δ
    A: np.ndarray        # (E, N)
    dA: np.ndarray       # (B, E, N) exp(Δ A)
    h_prev: np.ndarray   # (B, E, N)
    h: np.ndarray        # (B, E, N)
    yss: np.ndarray      # (B, E) h C + D x_c
    g: np.ndarray        # (B, E) yss * silu(z)


def time_step_bias(rng: np.random.Generator, size: int, lo: float, hi: float) -> np.ndarray:
    """softplus⁻¹ of Δ0 log-uniform on [lo, hi], floored at 1e-4 (transformers' dt init)."""
    dt = np.exp(rng.uniform(size=size) * (math.log(hi) - math.log(lo)) + math.log(lo))
    return inverse_softplus(np.maximum(dt, 1e-4))


class ConvMixer(ReverseCell):
    """What Mamba and Mamba-2 share: the state [y; h; buf] (the output, not fed back; the
    recurrent state, conv_channels x d_state per channel row; the causal convolution's last
    K - 1 inputs of its `conv_channels` channels) and the convolution itself, forward and
    reverse. A subclass gives `conv_channels`, `state_width` (the size of h) and the rest."""
    paths: ClassVar[tuple[str, ...]] = ("state",)
    output_block: ClassVar[str] = "y"

    @property
    def conv_channels(self) -> int:
        raise NotImplementedError

    @property
    def state_width(self) -> int:
        raise NotImplementedError

    @property
    def slots(self) -> int:
        """Inputs the convolution keeps in the state: K - 1 (none without a convolution)."""
        return max(self.d_conv - 1, 0)

    @property
    def blocks(self) -> dict[str, slice]:
        n, S = self.hidden, self.state_width
        out = {"y": slice(0, n), "state": slice(n, n + S)}
        if self.slots:
            out["conv"] = slice(n + S, n + S + self.conv_channels * self.slots)
        return out

    def _init_conv(self, rng: np.random.Generator, p: dict) -> None:
        C, K = self.conv_channels, self.d_conv
        if K:
            p["conv1d.weight"] = rng.uniform(-1.0, 1.0, size=(C, 1, K)) / math.sqrt(K)
            if self.use_conv_bias:
                p["conv1d.bias"] = np.zeros(C)

    def _conv(self, params, state: np.ndarray, u: np.ndarray):
        """(c, window): the convolution of the buffer in `state` and this step's input u."""
        if not self.d_conv:
            return u, u[:, :, None][:, :, :0]
        start = self.hidden + self.state_width
        buf = state[:, start:].reshape(state.shape[0], self.conv_channels, self.slots)
        return causal_conv(params["conv1d.weight"], params.get("conv1d.bias"), buf, u)

    def _new_state(self, y: np.ndarray, h: np.ndarray, window: np.ndarray) -> np.ndarray:
        B = y.shape[0]
        return np.concatenate([y, h.reshape(B, self.state_width),
                               window[:, :, 1:].reshape(B, self.conv_channels * self.slots)], axis=1)

    def _conv_reverse(self, params, dc: np.ndarray, G: np.ndarray, window, grads: Grads | None):
        """(du, g_buf_prev): dL/d(this step's input u) and the buffer's gradient one step back,
        from dL/dc and G's buffer block; the convolution's parameter gradients into `grads`."""
        B, r, _ = G.shape
        g_buf = G[..., self.hidden + self.state_width:].reshape(B, r, self.conv_channels, self.slots)
        if not self.d_conv:
            return dc, g_buf
        if grads is not None:
            grads.add("conv1d.weight", (dc[..., None] * window[:, None])[..., None, :])
            grads.add("conv1d.bias", dc)
        dwin = causal_conv_reverse(params["conv1d.weight"], dc, g_buf)
        return dwin[..., -1], dwin[..., :-1]

    def _prev(self, dh_prev: np.ndarray, g_buf_prev: np.ndarray) -> np.ndarray:
        """G one step back: nothing reads y<t-1>, so its block is zero."""
        B, r = dh_prev.shape[:2]
        return np.concatenate([np.zeros((B, r, self.hidden), dtype=dh_prev.dtype),
                               dh_prev.reshape(B, r, self.state_width),
                               g_buf_prev.reshape(B, r, self.conv_channels * self.slots)], axis=-1)


@dataclass(frozen=True)
class Mamba(ConvMixer):
    """One Mamba mixer: h<t> = exp(Δ<t> A) * h<t-1> + Δ<t> x_c B<t>^T, y<t> = out_proj((h<t> C<t> + D x_c) silu(z))."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(8, "output width n (transformers' hidden_size); the read-out sees y<t> (n)")
    expand: PosInt = option(2, "E = expand * hidden channels (intermediate_size)")
    d_state: PosInt = option(16, "N, the state coordinates per channel: h<t> is E x N (transformers' state_size)")
    d_conv: NonNegInt = option(4, "K of the causal convolution, whose last K - 1 inputs are in the state; "
                                  "0: no convolution (transformers' conv_kernel)")
    dt_rank: Union[PosInt, Literal["auto"]] = option(
        "auto", "R, the rank of Δ's projection; auto: ceil(hidden / 16) (transformers' time_step_rank)")
    use_bias: bool = option(False, "biases on in_proj and out_proj")
    use_conv_bias: bool = option(True, "a bias on the convolution")
    dt_min: PosFloat = option(0.001, "Δ at initialisation is log-uniform on [dt_min, dt_max]")
    dt_max: PosFloat = option(0.1, "Δ at initialisation is log-uniform on [dt_min, dt_max]")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of in_proj, x_proj and out_proj")
    kind: ClassVar[str] = "mamba"
    parallel_safe: ClassVar[bool] = True
    direct_paths: ClassVar[dict[str, str]] = {}

    def check(self) -> None:
        if self.dt_max < self.dt_min:
            raise ValueError(f"dt_max: must be >= dt_min ({self.dt_min}), got {self.dt_max}")

    # --- sizes and layout -------------------------------------------------------------
    @property
    def E(self) -> int:
        return self.expand * self.hidden

    @property
    def R(self) -> int:
        return math.ceil(self.hidden / 16) if self.dt_rank == "auto" else self.dt_rank

    @property
    def conv_channels(self) -> int:
        return self.E

    @property
    def state_width(self) -> int:
        return self.E * self.d_state

    # --- parameters -----------------------------------------------------------------
    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d, n, E, N, R = self.input_size, self.hidden, self.E, self.d_state, self.R
        p = {"in_proj.weight": init_matrix(rng, self.input_init, 2 * E, d, n)}
        if self.use_bias:
            p["in_proj.bias"] = np.zeros(2 * E)
        self._init_conv(rng, p)
        p["x_proj.weight"] = init_matrix(rng, self.input_init, R + 2 * N, E, n)
        p["dt_proj.weight"] = rng.uniform(-1.0, 1.0, size=(E, R)) / math.sqrt(R)
        p["dt_proj.bias"] = time_step_bias(rng, E, self.dt_min, self.dt_max)
        p["A_log"] = np.tile(np.log(np.arange(1, N + 1, dtype=float)), (E, 1))
        p["D"] = np.ones(E)
        p["out_proj.weight"] = init_matrix(rng, self.input_init, n, E, n)
        if self.use_bias:
            p["out_proj.bias"] = np.zeros(n)
        return freeze(p)

    def recurrent_names(self, params) -> list[str]:
        """What sets the decay exp(Δ A): A_log and Δ's projection."""
        return ["A_log", "dt_proj.weight", "dt_proj.bias"]

    # --- the step -------------------------------------------------------------------
    def step(self, params, state, x):
        n, E, N, R = self.hidden, self.E, self.d_state, self.R
        B = state.shape[0]
        h_prev = state[:, n:n + E * N].reshape(B, E, N)
        xz = x @ params["in_proj.weight"].T
        if self.use_bias:
            xz = xz + params["in_proj.bias"]
        u, z = xz[:, :E], xz[:, E:]
        c, window = self._conv(params, state, u)
        xc = silu(c)
        p = xc @ params["x_proj.weight"].T
        dtr, Bv, Cv = p[:, :R], p[:, R:R + N], p[:, R + N:]
        s = dtr @ params["dt_proj.weight"].T + params["dt_proj.bias"]
        delta = softplus(s)
        A = -np.exp(params["A_log"])
        dA = np.exp(delta[:, :, None] * A)
        h = dA * h_prev + (delta * xc)[:, :, None] * Bv[:, None, :]
        yss = np.einsum("ben,bn->be", h, Cv) + params["D"] * xc
        g = yss * silu(z)
        y = g @ params["out_proj.weight"].T
        if self.use_bias:
            y = y + params["out_proj.bias"]
        return self._new_state(y, h, window), MambaCache(x, z, window, c, xc, dtr, Bv, Cv, s, delta, A, dA, h_prev, h, yss, g)

    def log_diagonal(self, params, cache):
        """ln|exp(Δ A)| = Δ A, per (channel, state coordinate): exact, no exponential rounded."""
        B = cache.delta.shape[0]
        return {"state": (cache.delta[:, :, None] * cache.A).real.reshape(B, -1)}

    # --- the reverse pass (layers.ReverseCell) ----------------------------------------
    def _reverse(self, params, cache: MambaCache, G, grads: Grads | None, want_x: bool):
        n, E, N = self.hidden, self.E, self.d_state
        B, r, _ = G.shape
        c = cache
        g_y = G[..., :n]
        g_h = G[..., n:n + E * N].reshape(B, r, E, N)
        dg = g_y @ params["out_proj.weight"]                                   # (B, r, E)
        dyss = dg * silu(c.z)[:, None]
        dz = dg * (c.yss * silu_slope(c.z))[:, None]
        dh = g_h + dyss[..., None] * c.Cv[:, None, None, :]                  # dL/dh<t>, every route
        dCv = np.einsum("bre,ben->brn", dyss, c.h)
        dxc = dyss * params["D"]
        dlog = dh * (c.h_prev * c.dA)[:, None]                               # dL/d(Δ A) per (e, s)
        q = np.einsum("bren,bn->bre", dh, c.Bv)
        ddelta = np.einsum("bren,en->bre", dlog, c.A) + q * c.xc[:, None]
        dxc = dxc + q * c.delta[:, None]
        dBv = np.einsum("bren,be->brn", dh, c.delta * c.xc)
        ds = ddelta * sigmoid(c.s)[:, None]
        dp = np.concatenate([ds @ params["dt_proj.weight"], dBv, dCv], axis=-1)
        dxc = dxc + dp @ params["x_proj.weight"]
        dc = dxc * silu_slope(c.c)[:, None]
        du, g_buf_prev = self._conv_reverse(params, dc, G, c.window, grads)
        dxz = np.concatenate([du, dz], axis=-1)
        if grads is not None:
            grads.outer("out_proj.weight", g_y, c.g)
            grads.add("out_proj.bias", g_y)
            grads.add("D", dyss * c.xc[:, None])
            grads.add("A_log", dlog * (c.delta[:, :, None] * c.A)[:, None])   # d(Δ A)/d A_log = Δ A
            grads.outer("dt_proj.weight", ds, c.dtr)
            grads.add("dt_proj.bias", ds)
            grads.outer("x_proj.weight", dp, c.xc)
            grads.outer("in_proj.weight", dxz, c.x)
            grads.add("in_proj.bias", dxz)
        return self._prev(dh * c.dA[:, None], g_buf_prev), (dxz @ params["in_proj.weight"] if want_x else None)
