"""sLSTM (Beck et al. 2024, "xLSTM: extended long short-term memory", section 2.2): an LSTM
with an exponential input gate, a normaliser state n<t> and a stabiliser state m<t>.

Pre-activations (gate order i, f, z, o; R block-diagonal with `heads` blocks):
    s<t> = R h<t-1> + U x<t> + b                       R = W: (4n, n)  U: (4n, d)  b: (4n,)
    ln i<t> = s_i,   ln f<t> = ln σ(s_f) (forget: sigmoid) or s_f (forget: exp)
    z<t> = tanh(s_z),   o<t> = σ(s_o)
Stabilised form implemented: the official cell's pointwise step (NX-AI/xlstm,
xlstm/blocks/slstm/src/vanilla/slstm.py and its CUDA kernel slstm_pointwise.cu), which is the
paper's eqs. 15-17 except at a zero normaliser:
    m<t>  = ln i<t>                         where n<t-1> = 0 (the first step from the zero state)
            max(ln f<t> + m<t-1>, ln i<t>)  elsewhere                          stabiliser (B, n)
    i'<t> = min(1, exp(ln i<t> - m<t>)),  f'<t> = min(1, exp(ln f<t> + m<t-1> - m<t>))
    c<t>  = f' * c<t-1> + i' * z<t>                     cell                  (B, n)
    n<t>  = f' * n<t-1> + i'                            normaliser            (B, n)
    h<t>  = o<t> * c<t> / n<t>                          hidden (= a<t>)       (B, n)
Why that form: the c and n this cell reports are the paper's unstabilised c, n times
exp(-m<t>), so h is the paper's h whatever m is, but the c path of the probe (d c<t>/d c<t-k>,
every route, the one through m included) depends on m. Taking m<1> = max(ln f + 0, ln i), the
paper's equations read literally, shifted m, and with it c, from the first step on: c paths
were up to 1.1 decades off the official cell's (default initialisation, 4 units, 20 lags,
worst lag 0.34 to 1.10 decades over 4 seeds); with the official rule they agree to rounding
(tests/test_slstm.py, against a numpy transcription of the official step). The min(1, .)
only acts where n<t-1> = 0 and ln f + m<t-1> > ln i (elsewhere both exponents are <= 0):
f' = 1 there, a constant. The n = 0 test is per unit, as in the CUDA kernel; the vanilla
PyTorch step tests the whole batch (torch.all(n == 0)), which agrees from the zero state,
where every n<t-1> is 0 at once. The official step has the sigmoid forget gate only;
forget: exp (ln f = s_f) is the paper's other choice, with the same stabiliser. The official
code stores b, U x and R per head with the four gates side by side; here they are stacked by
gate (i, f, z, o), the same maths.
The state is [h; c; n; m] (B, 4n), zeros at t = 0 (n<1> = 1 from the first step on).
With heads > 1 a W passed in must be zero off the heads' blocks: one that is not is refused
(ValueError naming W, the head count and the largest off-block entry), not silently cut.

Derivative. With sel = [n<t-1> != 0 and ln f + m<t-1> >= ln i] (m takes ln f + m<t-1>),
capped = [n<t-1> = 0 and ln f + m<t-1> > ln i] (f' = 1), moves = 1 - sel - capped and
Δ = d ln f + d m<t-1> - d s_i:  d m = d s_i + sel Δ,  d ln f' = moves Δ,  d ln i' = -sel Δ.
The max and the n = 0 test are not analytic at their switches, but away from them the step is
analytic on each side, and the branches are chosen by real parts, so a complex step (an
imaginary perturbation) never changes branch and gives the one-sided derivative exactly:
complex-step checks apply (analytic = True); the switch set has measure zero and the tests
avoid it. σ', tanh' and d ln σ(s_f)/d s_f = σ(-s_f) come from the pre-activations (base.py),
never as 1 minus a rounded gate. For rows M = [M_h, M_c, M_n, M_m], with
G_c = M_c + M_h o/n, G_n = M_n - M_h h/n,
G_Δ = G_c (f' c<t-1> moves - i' z sel) + G_n (f' n<t-1> moves - i' sel) + M_m sel:
    M J = [ [M_m - G_Δ, G_Δ d ln f/d s_f, G_c i'(1 - z²), M_h (c/n) σ'_o] @ R,  G_c f',  G_n f',  G_Δ ]
Paths: "a" (h-block) and "c" (c-block, the stabilised c) of the full-state product, "state",
and "c_direct", the direct memory path Π diag(f'), from ln f' (exact in log space).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import (
    Cell,
    freeze,
    init_matrix,
    log_sigmoid,
    sigmoid,
    sigmoid_slope,
    tanh_slope,
)

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
    moves: np.ndarray    # 1 where ln f' = ln f + m<t-1> - ln i moves with both (neither sel nor capped)
    dlogf: np.ndarray    # d ln f / d s_f
    dz: np.ndarray       # tanh'(s_z)
    do: np.ndarray       # σ'(s_o)
    log_fp: np.ndarray   # ln f', real


@dataclass(frozen=True)
class SLSTM(Cell):
    """h<t> = o * c<t> / n<t> with exponential gating and a stabiliser state m<t>."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>; the state [a; c; n; m] holds 4n numbers")
    heads: PosInt = option(1, "the recurrence is block-diagonal in this many heads (hidden must be a multiple)")
    forget: Literal["sigmoid", "exp"] = option(
        "sigmoid", "the forget gate: sigmoid, or exp (stabilised like the input gate)")
    forget_bias: Finite = option(1.0, "b_f at initialisation")
    recurrent_init: InitSpec = option(
        Init("orthogonal", 1.0), "initialiser {kind, gain} of the matrices acting on the previous state")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
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

    def _recurrent(self, params, check: bool = False):
        """R: W itself, or with heads > 1 its per-head diagonal blocks. `check` (step does it,
        where a user's W enters every route: probe, trainer, sensitivity) refuses a W with
        entries off those blocks, which the cell would otherwise silently ignore. The real part
        is checked: complex-step checks perturb an entry's imaginary part, and an off-block
        entry's derivative is then 0, as backward's masked gradient says."""
        W = params["W"]
        if self.heads == 1:
            return W
        mask = _head_mask(self.hidden, self.heads)
        if check:
            off = np.abs(np.where(mask == 0.0, np.real(W), 0.0))
            worst = np.unravel_index(np.argmax(off), off.shape)
            if off[worst] > 0:
                dh = self.hidden // self.heads
                raise ValueError(
                    f"W: heads={self.heads} makes the sLSTM's recurrent matrix block-diagonal ({self.heads} "
                    f"blocks of {dh} x {dh} per gate), but the W given has entries off those blocks "
                    f"(largest |W[{worst[0]}, {worst[1]}]| = {off[worst]:.6g}), which the cell would ignore; "
                    f"zero them, or use heads: 1 for a full W")
        return W * mask

    def step(self, params, state, x):
        n = self.hidden
        h_prev, c_prev, n_prev, m_prev = (state[:, k * n:(k + 1) * n] for k in range(4))
        s = h_prev @ self._recurrent(params, check=True).T + x @ params["U"].T + params["b"]
        s_i, s_f, s_z, s_o = (s[:, k * n:(k + 1) * n] for k in range(4))
        if self.forget == "exp":
            log_f, dlogf = s_f, np.ones_like(s_f)
        else:   # ln σ and d ln σ(s)/ds = σ(-s) from s: exact where f is tiny or rounds to 1
            log_f, dlogf = log_sigmoid(s_f), sigmoid(-s_f)
        a = log_f + m_prev
        # the official cell's stabiliser (see the module docstring): m = ln i where n<t-1> is
        # zero, else the max; f' and i' are then capped at 1. Branches by real parts, so a
        # complex step never switches them
        first = n_prev.real == 0
        sel = ~first & (a.real >= s_i.real)
        capped = first & (a.real > s_i.real)       # f' = min(1, e^(a - ln i)) = 1: constant
        m = np.where(sel, a, s_i)
        log_fp, log_ip = np.where(capped, 0.0, a - m), s_i - m
        fp, ip = np.exp(log_fp), np.exp(log_ip)
        z, o = np.tanh(s_z), sigmoid(s_o)
        c = fp * c_prev + ip * z
        nrm = fp * n_prev + ip
        h = o * c / nrm
        moves = ~(sel | capped)                     # ln f' moves with Δ: 1 - sel - capped
        cache = SLSTMCache(h_prev, c_prev, n_prev, x, fp, ip, z, o, c, nrm, h, sel.astype(s.dtype),
                           moves.astype(s.dtype), dlogf, tanh_slope(s_z), sigmoid_slope(s_o), log_fp.real)
        return np.concatenate([h, c, nrm, m], axis=1), cache

    def _grads(self, cache, m):
        """(dL/ds (..., 4n), the c-, n- and m-columns of M J) for rows m (..., 4n)."""
        n = self.hidden
        lead = (m.shape[0],) + (1,) * (m.ndim - 2)
        v = lambda a: a.reshape(lead + (n,))   # noqa: E731  broadcast (B, n) over rows
        m_h, m_c, m_n, m_m = (m[..., k * n:(k + 1) * n] for k in range(4))
        sel, moves, fp, ip = v(cache.sel), v(cache.moves), v(cache.fp), v(cache.ip)
        g_c = m_c + m_h * v(cache.o / cache.nrm)
        g_n = m_n - m_h * v(cache.h / cache.nrm)
        g_delta = (g_c * (fp * v(cache.c_prev) * moves - ip * v(cache.z) * sel)
                   + g_n * (fp * v(cache.n_prev) * moves - ip * sel) + m_m * sel)
        ds = np.concatenate([m_m - g_delta, g_delta * v(cache.dlogf), g_c * ip * v(cache.dz),
                             m_h * v(cache.c / cache.nrm * cache.do)], axis=-1)
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
