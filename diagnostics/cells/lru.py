"""Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting recurrent neural networks for
long sequences"), with the normalisation as a function of ν (Zucchet & Orvieto 2024).

    λ_j  = exp(-exp(ν_j) + i θ_j)                    ν, θ: (n,)      |λ_j| = exp(-exp(ν_j))
    γ_j  = sqrt(1 - |λ_j|²)   (normalize: true)      recomputed from ν at every step and
           1                  (normalize: false)     differentiated through
    x<t> = λ * x<t-1> + γ * (B u<t>)                 B = B_re + i B_im: (n, d)   x<t>: (B, n) complex
    y<t> = Re(C x<t>) + D u<t>

The complex state is carried as the real vector s = [Re x; Im x] (state_size 2n), so
complex-step checks (which need a real state) and the trainer's real read-out apply:
    Re x<t> = Re λ Re x<t-1> - Im λ Im x<t-1> + γ B_re u<t>
    Im x<t> = Im λ Re x<t-1> + Re λ Im x<t-1> + γ B_im u<t>
    d s<t>/d s<t-1> = [[diag Re λ, -diag Im λ], [diag Im λ, diag Re λ]]   (2n, 2n), constant
Each λ_j acts on (Re x_j, Im x_j) as |λ_j| times a rotation by θ_j, so the k-step product
has singular values |λ_j|^k, each twice: log10 ||d s<t>/d s<t-k>||_2 = k log10 max|λ_j|.
The a-block is the whole state: the trainer's linear read-out V s + b_y of [Re x; Im x] is
Re(C x) with C = V_re - i V_im, any C. The skip term D u<t> is not modelled (the read-out
sees the state only). Paths: "a" (= "state", kept for tools that ask for it).

Ring initialisation (REFERENCES item 18): |λ| uniform in area on r_min <= |λ| <= r_max,
ν = log(-½ log(U (r_max² - r_min²) + r_min²)), θ ~ U[0, max_phase]; B_re, B_im ~ N(0, 1/(2d))
by default (E|B_ij|² = 1/d, the paper's Glorot-style init). Parameters: nu, theta, B_re, B_im.
Where this differs from Orvieto et al. 2023: their γ is a trained parameter (γ_log, initialised
at ln sqrt(1 - |λ|²)); here γ is recomputed from ν at every step, as a function of it
(Zucchet & Orvieto 2024), or 1. Their phase is trained as θ_log with θ = exp(θ_log); here θ is
the parameter itself. Their C and D are the trainer's read-out, which sees the state only: no
D u<t> skip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, NamedTuple

import numpy as np

from ..options import Init, InitSpec, NonNegFloat, PosInt, between, option
from .base import Cell, freeze, init_matrix

Radius = Annotated[float, between(0.0, 1.0, lo_open=True, hi_open=True)]


class LRUCache(NamedTuple):
    s_prev: np.ndarray    # (B, 2n) [Re x<t-1>; Im x<t-1>]
    u: np.ndarray         # (B, d)
    lam_re: np.ndarray    # (n,)
    lam_im: np.ndarray    # (n,)
    gamma: np.ndarray     # (n,)
    bu: np.ndarray        # (B, 2n) [B_re u; B_im u] before γ


@dataclass(frozen=True)
class LRU(Cell):
    """x<t> = λ * x<t-1> + γ * (B u<t>), λ = exp(-exp(ν) + iθ); state [Re x; Im x]."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "complex units n; the state [Re x; Im x] holds 2n numbers")
    r_min: Radius = option(0.9, "ring initialisation: |λ| uniform in area on r_min <= |λ| <= r_max")
    r_max: Radius = option(0.999, "ring initialisation: |λ| uniform in area on r_min <= |λ| <= r_max")
    max_phase: NonNegFloat = option(2 * math.pi, "θ ~ U[0, max_phase]: the angle of λ")
    normalize: bool = option(True, "γ = √(1 − |λ|²), recomputed from ν at every step; false: γ = 1")
    input_init: InitSpec = option(
        Init("gaussian", math.sqrt(0.5)), "initialiser {kind, gain} of B (its real and imaginary parts)")
    kind: ClassVar[str] = "lru"
    parallel_safe: ClassVar[bool] = True

    def check(self) -> None:
        if self.r_max < self.r_min:
            raise ValueError(f"r_max: must be >= r_min ({self.r_min}), got {self.r_max}")

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {"a": slice(0, 2 * n), "re": slice(0, n), "im": slice(n, 2 * n)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a", "state")

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d = self.hidden, self.input_size
        u1, u2 = rng.uniform(size=n), rng.uniform(size=n)
        nu = np.log(-0.5 * np.log(u1 * (self.r_max ** 2 - self.r_min ** 2) + self.r_min ** 2))
        return freeze({
            "nu": nu,
            "theta": self.max_phase * u2,
            "B_re": init_matrix(rng, self.input_init, n, d, n),
            "B_im": init_matrix(rng, self.input_init, n, d, n),
        })

    def _lambda(self, params):
        e = np.exp(params["nu"])
        mod = np.exp(-e)
        lam_re, lam_im = mod * np.cos(params["theta"]), mod * np.sin(params["theta"])
        if self.normalize:   # 1 - |λ|² = -expm1(-2 exp ν): no cancellation as |λ| -> 1
            gamma = np.sqrt(-np.expm1(-2.0 * e))
        else:
            gamma = np.ones_like(e)
        return e, lam_re, lam_im, gamma

    def step(self, params, state, x):
        n = self.hidden
        _, lam_re, lam_im, gamma = self._lambda(params)
        bu = np.concatenate([x @ params["B_re"].T, x @ params["B_im"].T], axis=1)
        re, im = state[:, :n], state[:, n:]
        new = np.concatenate([lam_re * re - lam_im * im + gamma * bu[:, :n],
                              lam_im * re + lam_re * im + gamma * bu[:, n:]], axis=1)
        return new, LRUCache(state, x, lam_re, lam_im, gamma, bu)

    def vjp(self, params, cache, m):
        n = self.hidden
        m_re, m_im = m[..., :n], m[..., n:]
        lr, li = cache.lam_re, cache.lam_im
        return np.concatenate([m_re * lr + m_im * li, m_im * lr - m_re * li], axis=-1)

    def jacobian(self, params, cache):
        n = self.hidden
        B = cache.s_prev.shape[0]
        J = np.zeros((B, 2 * n, 2 * n), dtype=np.result_type(cache.lam_re, cache.s_prev))
        i = np.arange(n)
        J[:, i, i] = J[:, n + i, n + i] = cache.lam_re
        J[:, i, n + i] = -cache.lam_im
        J[:, n + i, i] = cache.lam_im
        return J

    def backward(self, params, cache, g):
        n = self.hidden
        e, lr, li, gamma = self._lambda(params)
        g_re, g_im = g[:, :n], g[:, n:]
        re, im = cache.s_prev[:, :n], cache.s_prev[:, n:]
        d_lr = (g_re * re + g_im * im).sum(axis=0)           # dL/d Re λ
        d_li = (g_im * re - g_re * im).sum(axis=0)           # dL/d Im λ
        d_gamma = (g_re * cache.bu[:, :n] + g_im * cache.bu[:, n:]).sum(axis=0)
        # d λ/d ν = -exp(ν) λ; d γ/d ν = exp(ν) |λ|² / γ (γ² = 1 - exp(-2 exp ν)), 0 unnormalised
        d_nu = -e * (lr * d_lr + li * d_li)
        if self.normalize:
            d_nu = d_nu + d_gamma * e * np.exp(-2.0 * e) / gamma
        d_theta = lr * d_li - li * d_lr
        gr, gi = g_re * gamma, g_im * gamma
        grads = {"nu": d_nu, "theta": d_theta, "B_re": gr.T @ cache.u, "B_im": gi.T @ cache.u}
        return self.vjp(params, cache, g), grads, gr @ params["B_re"] + gi @ params["B_im"]

    def param_vjp(self, params, cache, m, names):
        """backward's parameter gradients kept per sequence and row (B, r, ...), not summed
        (backward itself is left as it was: its summation order is part of trained runs)."""
        n = self.hidden
        e, lr, li, gamma = self._lambda(params)
        m_re, m_im = m[..., :n], m[..., n:]
        re, im = cache.s_prev[:, None, :n], cache.s_prev[:, None, n:]
        out = {}
        if "nu" in names or "theta" in names:
            d_lr = m_re * re + m_im * im
            d_li = m_im * re - m_re * im
            if "nu" in names:
                d_nu = -e * (lr * d_lr + li * d_li)
                if self.normalize:
                    d_gamma = m_re * cache.bu[:, None, :n] + m_im * cache.bu[:, None, n:]
                    d_nu = d_nu + d_gamma * (e * np.exp(-2.0 * e) / gamma)
                out["nu"] = d_nu
            if "theta" in names:
                out["theta"] = lr * d_li - li * d_lr
        u = cache.u[:, None, None, :]
        if "B_re" in names:
            out["B_re"] = (m_re * gamma)[..., None] * u
        if "B_im" in names:
            out["B_im"] = (m_im * gamma)[..., None] * u
        return out

    def log_diagonal(self, params, cache):
        # ln|λ_j| = -exp(ν_j) exactly (no cos, sin or sqrt), listed for Re and Im coordinates
        lg = -np.exp(params["nu"])
        row = np.broadcast_to(np.concatenate([lg, lg]), cache.s_prev.shape)
        return {"a": row, "state": row}

    def recurrent_names(self, params) -> list[str]:
        return ["nu", "theta"]
