"""RG-LRU (De et al. 2024, "Griffin", REFERENCES item 29): the Real-Gated Linear Recurrent Unit
of google-deepmind/recurrentgemma (class RGLRU), with its parameter names and shapes, behind
the input projection of recurrentgemma's RecurrentBlock (linear_x).

Sizes: d = input_size, n = hidden (recurrentgemma's lru_width), H = heads (the gates are
block-diagonal with H blocks of n / H). Per step:

    u<t>  = W_x x<t> + b_x                              linear_x.weight (n, d), linear_x.bias (n,)
    i<t>  = σ(blockdiag(input_gate.w) u<t> + input_gate.b)    input_gate.w (H, n/H, n/H), .b (H, n/H)
    r<t>  = σ(blockdiag(a_gate.w) u<t> + a_gate.b)            a_gate.w, a_gate.b: the same shapes
    ln a<t> = -c r<t> softplus(Λ),  c = 8                 a_param Λ (n,)
    h<t>  = a<t> * h<t-1> + sqrt(1 - a<t>²) * (i<t> * u<t>)                                (n,)

(a block's gate is u_h @ w_h + b_h, recurrentgemma's BlockDiagonalLinear einsum "... h i, h i j ->
... h j"). The state is h<t> (B, n), fed back and read: the "a" block, and "state" is the same
path. d h<t>/d h<t-1> = diag(a<t>), a<t> in (0, 1): the diagonal fast path applies, with
ln a<t> = -8 r softplus(Λ) exact (no exponential rounded). sqrt(1 - a²) is computed as
sqrt(-expm1(2 ln a)), exact as a -> 1.

Where this differs from recurrentgemma: it resets the normalisation at a document's first
position (multiplier 1 where segment_pos = 0); this cell has no positions and normalises at
every step, the state starting at zero. Its sqrt has a gradient clipped at 1000 in training
(SqrtBoundDerivative, for bfloat16); here the derivative is the exact one. The RecurrentBlock's
convolution and gate branch are not modelled.

Initialisation as recurrentgemma: a_param = softplus⁻¹(-½ ln U[min_rad², max_rad²]) with
min_rad 0.9, max_rad 0.999 (so a^(1/8) lies on that ring at r = 1), gate weights N(0, 1/(n/H)),
gate biases 0; linear_x follows `input_init`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Init, InitSpec, PosInt, option
from .base import freeze, init_matrix, sigmoid, sigmoid_slope
from .layers import Grads, ReverseCell, inverse_softplus, softplus

C_GATE = 8.0   # the constant c of ln a = -c r softplus(Λ) (recurrentgemma's -8.0)


class RGLRUCache(NamedTuple):
    x: np.ndarray        # (B, d)
    u: np.ndarray        # (B, n)
    h_prev: np.ndarray   # (B, n)
    pi: np.ndarray       # (B, n) input gate pre-activation
    pr: np.ndarray       # (B, n) a gate pre-activation
    gi: np.ndarray       # (B, n) i<t>
    r: np.ndarray        # (B, n)
    log_a: np.ndarray    # (B, n)
    a: np.ndarray        # (B, n)
    mult: np.ndarray     # (B, n) sqrt(1 - a²)


@dataclass(frozen=True)
class RGLRU(ReverseCell):
    """h<t> = a<t> * h<t-1> + sqrt(1 - a<t>²) * (i<t> * u<t>), ln a<t> = -8 r<t> softplus(Λ)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of h<t> (recurrentgemma's lru_width)")
    heads: PosInt = option(1, "the gates are block-diagonal in this many heads (hidden must be a multiple)")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of linear_x")
    kind: ClassVar[str] = "rglru"
    parallel_safe: ClassVar[bool] = True
    direct_paths: ClassVar[dict[str, str]] = {}

    def check(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"heads: must divide hidden ({self.hidden}), got {self.heads}")

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a", "state")

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d, H = self.hidden, self.input_size, self.heads
        bw = n // H
        ring = -0.5 * np.log(rng.uniform(0.9 ** 2, 0.999 ** 2, size=n))
        return freeze({
            "linear_x.weight": init_matrix(rng, self.input_init, n, d, n),
            "linear_x.bias": np.zeros(n),
            "a_param": inverse_softplus(ring),
            "input_gate.w": rng.normal(scale=1.0 / np.sqrt(bw), size=(H, bw, bw)),
            "input_gate.b": np.zeros((H, bw)),
            "a_gate.w": rng.normal(scale=1.0 / np.sqrt(bw), size=(H, bw, bw)),
            "a_gate.b": np.zeros((H, bw)),
        })

    def recurrent_names(self, params) -> list[str]:
        """What sets the decay a<t>: Λ and the a gate."""
        return ["a_param", "a_gate.w", "a_gate.b"]

    def _gate(self, params, name: str, u):
        H = self.heads
        uh = u.reshape(u.shape[0], H, -1)
        return (np.einsum("bhi,hij->bhj", uh, params[f"{name}.w"]) + params[f"{name}.b"]).reshape(u.shape)

    def step(self, params, state, x):
        u = x @ params["linear_x.weight"].T + params["linear_x.bias"]
        pi, pr = self._gate(params, "input_gate", u), self._gate(params, "a_gate", u)
        gi, r = sigmoid(pi), sigmoid(pr)
        log_a = -C_GATE * r * softplus(params["a_param"])
        a = np.exp(log_a)
        mult = np.sqrt(-np.expm1(2.0 * log_a))
        h = a * state + mult * (gi * u)
        return h, RGLRUCache(x, u, state, pi, pr, gi, r, log_a, a, mult)

    def log_diagonal(self, params, cache):
        la = cache.log_a.real
        return {"a": la, "state": la}

    def _reverse(self, params, cache: RGLRUCache, G, grads: Grads | None, want_x: bool):
        c, e = cache, (lambda a: a[:, None])   # noqa: E731
        H = self.heads
        B, r, n = G.shape
        gu = c.gi * c.u
        # d h / d ln a = a h<t-1> + d sqrt(1 - e^(2 ln a)) / d ln a * (i u) = a h<t-1> - a² / sqrt(1 - a²) (i u)
        dla = G * e(c.a * c.h_prev - c.a * c.a / c.mult * gu)
        dgu = G * e(c.mult)
        sp = softplus(params["a_param"])
        dpr = dla * e(-C_GATE * sp * sigmoid_slope(c.pr))
        dpi = dgu * e(c.u * sigmoid_slope(c.pi))
        du = dgu * e(c.gi)
        for name, dp in (("input_gate", dpi), ("a_gate", dpr)):
            dph = dp.reshape(B, r, H, -1)
            du = du + np.einsum("brhj,hij->brhi", dph, params[f"{name}.w"]).reshape(B, r, n)
            if grads is not None:
                uh = c.u.reshape(B, H, -1)
                grads.add(f"{name}.w", uh[:, None, :, :, None] * dph[..., None, :])
                grads.add(f"{name}.b", dph)
        if grads is not None:
            grads.add("a_param", dla * e(-C_GATE * c.r * sigmoid(params["a_param"])))
            grads.outer("linear_x.weight", du, c.x)
            grads.add("linear_x.bias", du)
        return G * e(c.a), (du @ params["linear_x.weight"] if want_x else None)
