"""Coupled oscillatory RNN, coRNN (Rusch & Mishra 2021): a second-order ODE
y'' = σ(W y + 𝒲 y' + V u + b) - γ y - ε y' discretised with step Δt (IMEX form).

    s<t> = W_y y<t-1> + W_z z<t-1> + U x<t> + b      W_y, W_z: (n, n)  U: (n, d)  b: (n,)
    z<t> = z<t-1> + Δt (tanh(s<t>) - γ y<t-1> - ε z<t-1>)                          (B, n)
    y<t> = y<t-1> + Δt z<t>                                                        (B, n)
(the paper's W, 𝒲, V are W_y, W_z, U here; σ = tanh.) The state is [y<t>; z<t>], (B, 2n);
the block "a" is y (the paper's hidden state, which the read-out sees) and "z" its velocity.

Step Jacobian, with D = diag(1 - tanh²(s<t>)):
    d z<t>/d y<t-1> = Δt (D W_y - γ I),   d z<t>/d z<t-1> = I + Δt (D W_z - ε I)
    d y<t>/d y<t-1> = I + Δt d z<t>/d y<t-1>,   d y<t>/d z<t-1> = Δt d z<t>/d z<t-1>
For rows M = [M_y, M_z], with G = M_z + Δt M_y (the gradient reaching z<t>):
    M J = [M_y + Δt ((G D) W_y - γ G),  G + Δt ((G D) W_z - ε G)]
one GEMM (G D) @ [W_y, W_z] over all rows.

With γ = ε = 0 and all weights zero, D W = 0 whatever σ(b) is, and each unit's (y_j, z_j)
pair steps by [[1, Δt], [0, 1]]: a Jordan block with eigenvalue 1, so J^k = [[1, kΔt],
[0, 1]] per unit and ||J^k||_2 = (kΔt + sqrt(k²Δt² + 4)) / 2: growth linear in k, not
geometric, while the y- and z-blocks stay the identity (tested).
Defaults Δt = 0.042, γ = 2.7, ε = 4.7: the paper's sequential-MNIST setting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, NonNegFloat, PosFloat, PosInt, option
from .base import Cell, freeze, init_matrix, tanh_slope


class CoRNNCache(NamedTuple):
    y_prev: np.ndarray   # (B, n)
    z_prev: np.ndarray   # (B, n)
    x: np.ndarray        # (B, d)
    dq: np.ndarray       # (B, n) 1 - tanh²(s<t>)


@dataclass(frozen=True)
class CoRNN(Cell):
    """y<t> = y<t-1> + Δt z<t>, z<t> = z<t-1> + Δt (tanh(W_y y + W_z z + U x + b) - γ y - ε z)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of y (and of z: the state [y; z] holds 2n numbers)")
    dt: PosFloat = option(0.042, "Δt, the time step of the discretised oscillators")
    gamma: NonNegFloat = option(2.7, "γ, the restoring force (y's own pull towards 0)")
    epsilon: NonNegFloat = option(4.7, "ε, the damping of z")
    recurrent_init: InitSpec = option(
        Init("uniform", 1.0), "initialiser {kind, gain} of the matrices acting on the previous state")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "cornn"
    parallel_safe: ClassVar[bool] = True

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {"a": slice(0, n), "z": slice(n, 2 * n)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a", "z", "state")

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, d = self.hidden, self.input_size
        return freeze({
            "W_y": init_matrix(rng, self.recurrent_init, n, n, n),
            "W_z": init_matrix(rng, self.recurrent_init, n, n, n),
            "U": init_matrix(rng, self.input_init, n, d, n),
            "b": np.full(n, float(self.bias)),
        })

    def step(self, params, state, x):
        n, dt = self.hidden, self.dt
        y, z = state[:, :n], state[:, n:]
        s = y @ params["W_y"].T + z @ params["W_z"].T + x @ params["U"].T + params["b"]
        z_new = z + dt * (np.tanh(s) - self.gamma * y - self.epsilon * z)
        y_new = y + dt * z_new
        return np.concatenate([y_new, z_new], axis=1), CoRNNCache(y, z, x, tanh_slope(s))

    def _through(self, params, cache, m_y, m_z):
        """(gradient reaching z<t>, gradient reaching s<t> / Δt, the y- and z-columns of M J)."""
        dt = self.dt
        g = m_z + dt * m_y
        gd = g * cache.dq.reshape(cache.dq.shape[:1] + (1,) * (g.ndim - 2) + cache.dq.shape[1:])
        n = self.hidden
        w = np.concatenate([params["W_y"], params["W_z"]], axis=1)     # (n, 2n)
        both = (gd.reshape(-1, n) @ w).reshape(g.shape[:-1] + (2 * n,))
        out_y = m_y + dt * (both[..., :n] - self.gamma * g)
        out_z = g + dt * (both[..., n:] - self.epsilon * g)
        return gd, np.concatenate([out_y, out_z], axis=-1)

    def vjp(self, params, cache, m):
        n = self.hidden
        return self._through(params, cache, m[..., :n], m[..., n:])[1]

    def jacobian(self, params, cache):
        n, dt = self.hidden, self.dt
        B = cache.dq.shape[0]
        eye = np.eye(n)
        dz_dy = dt * (cache.dq[:, :, None] * params["W_y"][None] - self.gamma * eye)
        dz_dz = eye + dt * (cache.dq[:, :, None] * params["W_z"][None] - self.epsilon * eye)
        J = np.empty((B, 2 * n, 2 * n), dtype=dz_dy.dtype)
        J[:, :n, :n] = eye + dt * dz_dy
        J[:, :n, n:] = dt * dz_dz
        J[:, n:, :n] = dz_dy
        J[:, n:, n:] = dz_dz
        return J

    def backward(self, params, cache, g):
        n, dt = self.hidden, self.dt
        gd, g_prev = self._through(params, cache, g[:, :n], g[:, n:])
        ds = dt * gd                                                   # dL/d s<t>
        grads = {"W_y": ds.T @ cache.y_prev, "W_z": ds.T @ cache.z_prev, "U": ds.T @ cache.x,
                 "b": ds.sum(axis=0)}
        return g_prev, grads, ds @ params["U"]
