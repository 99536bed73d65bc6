"""GRU cell, in the notes' notation. The state is c<t> = a<t>, shape (B, n).

    Γ_u   = σ(W_u c<t-1> + U_u x<t> + b_u)               update gate (Γ_f = 1 - Γ_u)   (B, n)
    Γ_r   = σ(W_r c<t-1> + U_r x<t> + b_r)               relevance / reset gate        (B, n)
    c~<t> = tanh(W_c (Γ_r * c<t-1>) + U_c x<t> + b_c)    candidate memory              (B, n)
    c<t>  = Γ_u * c~<t> + (1 - Γ_u) * c<t-1>,   a<t> = c<t>
reset_gate=False is the notes' simplified GRU: Γ_r = 1 and there are no W_r, U_r, b_r.
reset_after=True applies Γ_r after the recurrent product, with a bias of its own b_hn (n,):
    c~<t> = tanh(U_c x<t> + b_c + Γ_r * (W_c c<t-1> + b_hn))
the form of cuDNN, PyTorch's nn.GRU and Keras's reset_after=True (REFERENCES item 16). A
PyTorch GRU is this cell with Γ_u = 1 - z: its z-gate weights and biases negated (σ(-v) = 1 - σ(v)).

Parameters are stacked by gate: W (G n, n), U (G n, d), b (G n,), gate order (u, r, c), or
(u, c) without the reset gate. (PyTorch stacks (r, z, n) and puts Γ_u on c<t-1>; here Γ_u
weighs the candidate, as in the notes.) `split(params)` names the blocks.

Step Jacobian, with σ'_* = Γ_*(1 - Γ_*), du = (c~ - c<t-1>) σ'_u, dc = Γ_u (1 - c~²):
    d c<t>/d c<t-1> = diag(1 - Γ_u) + diag(du) W_u + diag(dc) W_c (diag(Γ_r) + diag(c<t-1> σ'_r) W_r)
For rows M (B, r, n), with P = (M dc) @ W_c:
    M J = M (1 - Γ_u) + P Γ_r + [M du, P c<t-1> σ'_r] @ [W_u; W_r]
two GEMMs over all B r rows (one without the reset gate: [M du, M dc] @ [W_u; W_c]).
Saturated gates stay exact: 1 - Γ_u is σ(-z_u), never 1 minus a rounded Γ_u, and σ', 1 - c~²
come from the pre-activations (base.sigmoid_slope, tanh_slope). At b_u = 40 the subtraction
gave 1 - Γ_u = 0 (the dense probe read -inf) where σ(-40) = 4.2e-18; an nn.GRU whose z-bias is
-40 is this case (Γ_u = 1 - z).
With reset_after, h = W_c c<t-1> + b_hn and dr = h σ'_r:
    d c<t>/d c<t-1> = diag(1 - Γ_u) + diag(du) W_u + diag(dc dr) W_r + diag(dc Γ_r) W_c
    M J = M (1 - Γ_u) + [M du, M dc dr, M dc Γ_r] @ [W_u; W_r; W_c]      one GEMM
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import GatedCell, freeze, sigmoid, sigmoid_slope, tanh_slope, weights_times


class GRUCache(NamedTuple):
    c_prev: np.ndarray      # (B, n)
    x: np.ndarray           # (B, d)
    keep: np.ndarray        # (B, n) 1 - Γ_u = σ(-z_u), the direct path d c<t>/d c<t-1>
    gamma_r: np.ndarray     # (B, n); ones without the reset gate
    du: np.ndarray          # (B, n) (c~ - c<t-1>) σ'_u
    dc: np.ndarray          # (B, n) Γ_u (1 - c~²)
    dr: np.ndarray          # (B, n) c<t-1> σ'_r (reset_after: h σ'_r); zeros without the reset gate


@dataclass(frozen=True)
class GRU(GatedCell):
    """A GRU in the notes' form: c<t> = Γ_u * c~<t> + (1 - Γ_u) * c<t-1>, a<t> = c<t>."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>")
    reset_gate: bool = option(True, "false: the simplified GRU of the notes (Γ_r = 1)")
    reset_after: bool = option(
        False,
        "true: the cuDNN/PyTorch/Keras candidate tanh(U_c x + b_c + Γ_r * (W_c c + b_hn)), with its "
        "own bias b_hn")
    recurrent_init: InitSpec = option(
        Init("orthogonal", 1.0), "initialiser {kind, gain} of the matrices acting on the previous state")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "gru"
    parallel_safe: ClassVar[bool] = True   # pure: the probe may split a batch over workers

    def check(self) -> None:
        if self.reset_after and not self.reset_gate:
            raise ValueError("reset_after: needs reset_gate: true (it says where Γ_r applies)")

    @property
    def gates(self) -> tuple[str, ...]:
        return ("u", "r", "c") if self.reset_gate else ("u", "c")

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        W, U, b = self.stacked_weights(rng)
        if self.reset_after:   # every bias starts at `bias`, b_hn too (PyTorch draws them all alike)
            return freeze({"W": W, "U": U, "b": b, "b_hn": np.full(self.hidden, float(self.bias))})
        return freeze({"W": W, "U": U, "b": b})

    def step(self, params, state, x):
        if self.reset_after:
            return self._step_after(params, state, x)
        n = self.hidden
        W, U, b = params["W"], params["U"], params["b"]
        c_prev = state
        xu = x @ U.T + b                       # input parts of all pre-activations (B, G n)
        g = self.gates.index("c")              # gates before the candidate: u (, r)
        zg = c_prev @ W[:g * n].T + xu[:, :g * n]
        if self.reset_gate:
            gamma_r = sigmoid(zg[:, n:2 * n])
            dr = c_prev * sigmoid_slope(zg[:, n:2 * n])
        else:
            gamma_r, dr = np.ones_like(c_prev), np.zeros_like(c_prev)
        return self._combine(zg[:, :n], (gamma_r * c_prev) @ W[g * n:].T + xu[:, g * n:], c_prev, x, gamma_r, dr)

    def _combine(self, z_u, z_c, c_prev, x, gamma_r, dr):
        """c<t> and the cache from the update gate's and the candidate's pre-activations."""
        gamma_u, keep = sigmoid(z_u), sigmoid(-z_u)
        c_tilde = np.tanh(z_c)
        c = gamma_u * c_tilde + keep * c_prev
        du = (c_tilde - c_prev) * (gamma_u * keep)      # σ'_u = σ(z_u) σ(-z_u)
        dc = gamma_u * tanh_slope(z_c)
        return c, GRUCache(c_prev, x, keep, gamma_r, du, dc, dr)

    def _step_after(self, params, c_prev, x):
        n = self.hidden
        xu = x @ params["U"].T + params["b"]
        hw = c_prev @ params["W"].T            # every gate reads c<t-1> itself: one GEMM
        z_r = hw[:, n:2 * n] + xu[:, n:2 * n]
        gamma_r = sigmoid(z_r)
        h = hw[:, 2 * n:] + params["b_hn"]
        return self._combine(hw[:, :n] + xu[:, :n], xu[:, 2 * n:] + gamma_r * h, c_prev, x, gamma_r,
                             h * sigmoid_slope(z_r))

    def _dz(self, params, cache, m):
        """Gradient w.r.t. the stacked pre-activations (..., G n) and the P term, for rows m.
        With reset_after, P is None and dz is the gradient w.r.t. the input side; the
        recurrent side differs only in its c-block, dz_c Γ_r (see _dz_recurrent)."""
        n, G = self.hidden, len(self.gates)
        bc = lambda v: v.reshape(v.shape[0], *([1] * (m.ndim - 2)), n)  # noqa: E731
        dz = np.empty(m.shape[:-1] + (G * n,), dtype=np.result_type(m, cache.dc))
        dz_c = dz[..., (G - 1) * n:]
        np.multiply(m, bc(cache.dc), out=dz_c)
        np.multiply(m, bc(cache.du), out=dz[..., :n])
        if not self.reset_gate:
            return dz, None
        if self.reset_after:
            np.multiply(dz_c, bc(cache.dr), out=dz[..., n:2 * n])
            return dz, None
        W_c = params["W"][(G - 1) * n:]
        p = dz_c.reshape(-1, n) @ W_c           # gradient reaching Γ_r * c<t-1>
        p = p.reshape(m.shape)
        np.multiply(p, bc(cache.dr), out=dz[..., n:2 * n])
        return dz, p

    def _dz_recurrent(self, cache, dz):
        """reset_after: the gradient w.r.t. [W_u; W_r; W_c] c<t-1> (the c-block scaled by Γ_r)."""
        n = self.hidden
        dh = dz.copy()
        dh[..., 2 * n:] *= cache.gamma_r.reshape(cache.gamma_r.shape[0], *([1] * (dz.ndim - 2)), n)
        return dh

    def _gate_rows(self, params):
        return params["W"][:2 * self.hidden]   # [W_u; W_r] or [W_u; W_c]: rows hit by dz[:, :2n]

    def vjp(self, params, cache, m):
        B, r, n = m.shape
        dz, p = self._dz(params, cache, m)
        if self.reset_after:
            dh = self._dz_recurrent(cache, dz)
            out = (dh.reshape(B * r, 3 * n) @ params["W"]).reshape(B, r, n)
            out += m * cache.keep[:, None, :]
            return out
        out = (dz[..., :2 * n].reshape(B * r, 2 * n) @ self._gate_rows(params)).reshape(B, r, n)
        out += m * cache.keep[:, None, :]
        if p is not None:
            out += p * cache.gamma_r[:, None, :]
        return out

    def jvp(self, params, cache, v):
        """J v for columns v (B, n, p), from the Jacobian in the module docstring: one GEMM
        of every gate's W with v, and for the reset-before gate a second with W_c."""
        n = self.hidden
        col = lambda a: a[:, :, None]  # noqa: E731  (B, n) over the columns
        wv = weights_times(params["W"], v)                       # (B, G n, p)
        out = col(cache.du) * wv[:, :n] + col(cache.keep) * v
        if self.reset_after:          # dc (dr W_r v + Γ_r W_c v)
            out += col(cache.dc) * (col(cache.dr) * wv[:, n:2 * n] + col(cache.gamma_r) * wv[:, 2 * n:])
        elif self.reset_gate:         # dc W_c (Γ_r v + dr W_r v)
            inner = col(cache.gamma_r) * v + col(cache.dr) * wv[:, n:2 * n]
            out += col(cache.dc) * weights_times(params["W"][2 * n:], inner)
        else:                         # dc W_c v
            out += col(cache.dc) * wv[:, n:]
        return out

    def input_vjp(self, params, cache, m):
        """m @ d c<t>/d x<t> for rows m (B, r, n): the pre-activations' gradient through U."""
        B, r, _ = m.shape
        dz, _ = self._dz(params, cache, m)
        return (dz.reshape(B * r, -1) @ params["U"]).reshape(B, r, -1)

    def jacobian(self, params, cache):
        """Dense (B, n, n) from the formula in the module docstring."""
        n = self.hidden
        s = self.split(params)
        W_c = s["W_c"]
        if self.reset_after:
            J = (cache.du[:, :, None] * s["W_u"][None] + (cache.dc * cache.dr)[:, :, None] * s["W_r"][None]
                 + (cache.dc * cache.gamma_r)[:, :, None] * W_c[None])
        else:
            if self.reset_gate:
                inner = W_c[None] * cache.gamma_r[:, None, :] + (W_c[None] * cache.dr[:, None, :]) @ s["W_r"]
            else:
                inner = W_c[None]
            J = cache.du[:, :, None] * s["W_u"][None] + cache.dc[:, :, None] * inner
        idx = np.arange(n)
        J[:, idx, idx] += cache.keep
        return J

    def backward(self, params, cache, g):
        n, G = self.hidden, len(self.gates)
        dz, p = self._dz(params, cache, g)
        if self.reset_after:
            dh = self._dz_recurrent(cache, dz)
            g_prev = dh @ params["W"] + g * cache.keep
            grads = {"W": dh.T @ cache.c_prev, "U": dz.T @ cache.x, "b": dz.sum(axis=0),
                     "b_hn": dh[:, 2 * n:].sum(axis=0)}
            return g_prev, grads, dz @ params["U"]
        g_prev = dz[:, :2 * n] @ self._gate_rows(params) + g * cache.keep
        if p is not None:
            g_prev += p * cache.gamma_r
        # the candidate's recurrent input is Γ_r * c<t-1>; the gates' is c<t-1>
        gW = np.empty((G * n, n), dtype=dz.dtype)
        gW[:(G - 1) * n] = dz[:, :(G - 1) * n].T @ cache.c_prev
        gW[(G - 1) * n:] = dz[:, (G - 1) * n:].T @ (cache.gamma_r * cache.c_prev)
        grads = {"W": gW, "U": dz.T @ cache.x, "b": dz.sum(axis=0)}
        return g_prev, grads, dz @ params["U"]
