"""LSTM cell, in the notes' notation. The state is one array [a<t>; c<t>] of shape (B, 2n).

    Γ_u  = σ(W_u a<t-1> + U_u x<t> + b_u)          update (store) gate     (B, n)
    Γ_f  = σ(W_f a<t-1> + U_f x<t> + b_f)          forget gate             (B, n)
    c~<t> = tanh(W_c a<t-1> + U_c x<t> + b_c)      candidate memory        (B, n)
    Γ_o  = σ(W_o a<t-1> + U_o x<t> + b_o)          output (retrieve) gate  (B, n)
    c<t> = Γ_u * c~<t> + Γ_f * c<t-1>              forget_gate=False: c<t> = c<t-1> + Γ_u * c~<t>
    a<t> = Γ_o * tanh(c<t>)                        output_tanh=False: a<t> = Γ_o * c<t>

Parameters are stacked by gate so a step (and a Jacobian product) is one GEMM:
    W (G n, n), U (G n, d), b (G n,)   gate order (u, f, c, o) -- PyTorch's (i, f, g, o);
    without the forget gate G = 3 and the order is (u, c, o). `split(params)` names the blocks.

Step Jacobian, with φ = tanh(c<t>) (φ = c<t> when output_tanh=False) and k = Γ_o φ':
    d c<t>/d a<t-1> = diag(c~ σ'_u) W_u + diag(c<t-1> σ'_f) W_f + diag(Γ_u (1 - c~²)) W_c
    d c<t>/d c<t-1> = diag(Γ_f)                     (the direct memory path; I without Γ_f)
    d a<t>/d a<t-1> = diag(φ σ'_o) W_o + diag(k) d c<t>/d a<t-1>
    d a<t>/d c<t-1> = diag(k Γ_f)
σ' = Γ (1 - Γ) and 1 - c~², φ' are formed from the pre-activations (base.sigmoid_slope,
tanh_slope), never by subtraction from a rounded gate, so saturated gates stay exact.
For rows M = [M_a, M_c] (B, r, 2n), with G_c = M_c + M_a k (the gradient reaching c<t>):
    M J = [ M @ [d a<t>/d a<t-1>; d c<t>/d a<t-1>] ,  G_c Γ_f ]
`vjp` computes the first block in one of two ways, whichever is cheaper for r:
  many rows (the probe, r ~ 2n): fold the gate diagonals into a (2n, n) matrix per sequence
    (O(B n²) work) and do B products (r, 2n) x (2n, n): 4 B r n² flops;
  few rows (r < 3n/4): [G_c c~ σ'_u, G_c c<t-1> σ'_f, G_c Γ_u (1 - c~²), M_a φ σ'_o] @ W,
    one (B r, G n) x (G n, n) GEMM shared by the batch: 8 B r n² flops, no per-sequence matrices.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, ClassVar, NamedTuple, Optional

import numpy as np
from pydantic import Field

from ..options import Finite, Init, InitSpec, PosInt, option
from .base import GatedCell, freeze, log_sigmoid, sigmoid, sigmoid_slope, tanh_slope, weights_times

# What a thread's scratch may keep between calls, in bytes. Reuse pays where a lag is cheap (a
# fresh multi-megabyte array per lag costs page faults); beyond this an array is allocated per
# call, and its lag's GEMMs dwarf the page faults (n = 512, B = 64: 268 MB, 69 GFLOP per lag)
SCRATCH_BYTES = 32 << 20
SCRATCH_SHAPES = 4   # arrays a thread keeps at most (the probe's vjp uses two, input_vjp one more)


class Scratch:
    """Scratch arrays for the vjp of every LSTM, one set per thread, reused from call to call:
    the folded step matrices are consumed inside vjp, and a fresh multi-megabyte array every
    lag costs page faults. Per thread, so concurrent probes never share an array; at most
    SCRATCH_SHAPES arrays and SCRATCH_BYTES are kept (without a bound, a thread held up to four
    268 MB arrays for good after one large probe). A forked worker starts with a copy of the
    forking thread's set, copy-on-write: arrays of its own shapes are reused, others cost no
    memory until written. One instance, `SCRATCH`, serves every cell of the process."""

    def __init__(self):
        self._local = threading.local()

    def _arrays(self) -> dict:
        return self._local.__dict__.setdefault("arrays", {})

    def get(self, shape, dtype, order="C") -> np.ndarray:
        """An array of that shape, dtype and memory order, contents undefined: this thread's
        kept one, else a new one, kept if it fits (the others dropped if it does not fit
        beside them)."""
        pool = self._arrays()
        key = (shape, np.dtype(dtype).str, order)
        buf = pool.get(key)
        if buf is None:
            buf = np.empty(shape, dtype=dtype, order=order)
            if buf.nbytes <= SCRATCH_BYTES:
                if len(pool) >= SCRATCH_SHAPES or self.nbytes() + buf.nbytes > SCRATCH_BYTES:
                    pool.clear()
                pool[key] = buf
        return buf

    def held(self) -> dict:
        """This thread's kept arrays, {(shape, dtype, order): array} (a copy of the mapping)."""
        return dict(self._arrays())

    def nbytes(self) -> int:
        """Bytes this thread keeps."""
        return sum(a.nbytes for a in self._arrays().values())

    def clear(self) -> None:
        """Drop this thread's arrays (the next vjp allocates afresh)."""
        self._arrays().clear()


SCRATCH = Scratch()


class LSTMCache(NamedTuple):
    a_prev: np.ndarray      # (B, n)
    c_prev: np.ndarray      # (B, n)
    x: np.ndarray           # (B, d)
    gamma_f: np.ndarray     # (B, n); ones when forget_gate=False
    log_gamma_f: np.ndarray  # (B, n) ln Γ_f computed from the pre-activation (no underflow)
    k: np.ndarray           # (B, n) d a<t>/d c<t> = Γ_o φ'
    coef: np.ndarray        # (B, G-1, n) multipliers of G_c for the gates before o
    coef_o: np.ndarray      # (B, n) φ σ'_o, multiplier of M_a for the output gate


@dataclass(frozen=True)
class LSTM(GatedCell):
    """An LSTM: c<t> = Γ_u * c~<t> + Γ_f * c<t-1>, a<t> = Γ_o * tanh(c<t>)."""
    input_size: PosInt = option(1, "features per step of x<t> (a case sets it from the task's inputs)")
    hidden: PosInt = option(32, "units n of a<t>")
    forget_gate: bool = option(
        True, "false: the 1997 LSTM, c<t> = c<t-1> + Γ_u * c~<t> (the direct memory path is the identity)")
    output_tanh: bool = option(True, "false: a<t> = Γ_o * c<t>")
    forget_bias: Finite = option(
        1.0, "b_f at initialisation: Γ_f = σ(b_f), a memory of -1/ln σ(b_f) steps (1.0: 3.2 steps)")
    # chrono initialisation's T_max: b_f ~ ln U[1, T_max - 1] must have a non-empty range
    chrono: Optional[Annotated[float, Field(ge=2, allow_inf_nan=False)]] = option(
        None, "T_max of the chrono initialisation (Tallec & Ollivier 2018): b_f ~ ln U[1, T_max - 1], "
              "b_u = -b_f; null: forget_bias")
    recurrent_init: InitSpec = option(
        Init("orthogonal", 1.0), "initialiser {kind, gain} of the matrices acting on the previous state")
    input_init: InitSpec = option(Init("gaussian", 1.0), "initialiser {kind, gain} of the input weights U")
    bias: Finite = option(0.0, "initial value of the biases no other option sets")
    kind: ClassVar[str] = "lstm"
    parallel_safe: ClassVar[bool] = True   # pure: the probe may split a batch over workers
    vjp_accepts: ClassVar[frozenset] = frozenset({"out", "scale", "absmax"})

    # --- layout ----------------------------------------------------------------------
    @property
    def gates(self) -> tuple[str, ...]:
        return ("u", "f", "c", "o") if self.forget_gate else ("u", "c", "o")

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {"a": slice(0, n), "c": slice(n, 2 * n)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a", "c", "c_direct", "state")

    # --- parameters --------------------------------------------------------------------
    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = self.hidden
        W, U, b = self.stacked_weights(rng)
        if self.forget_gate:
            if self.chrono is not None:
                # Tallec & Ollivier 2018, eq. 16: memory time scales spread over [1, T_max - 1]
                b_f = np.log(rng.uniform(1.0, self.chrono - 1.0, size=n))
                b[n:2 * n], b[0:n] = b_f, -b_f
            else:
                b[n:2 * n] = self.forget_bias
        return freeze({"W": W, "U": U, "b": b})

    # --- forward -----------------------------------------------------------------------
    def step(self, params, state, x):
        n = self.hidden
        a_prev, c_prev = state[:, :n], state[:, n:]
        z = a_prev @ params["W"].T + x @ params["U"].T + params["b"]
        # σ' and tanh' from the pre-activations: Γ (1 - Γ) is 0 at z = 40, where σ'(40) = 4.2e-18
        gamma_u = sigmoid(z[:, :n])
        if self.forget_gate:
            z_f = z[:, n:2 * n]
            gamma_f, log_gamma_f = sigmoid(z_f), log_sigmoid(z_f)
            z_c, z_o = z[:, 2 * n:3 * n], z[:, 3 * n:]
            c_tilde = np.tanh(z_c)
            c = gamma_u * c_tilde + gamma_f * c_prev
        else:
            gamma_f, log_gamma_f = np.ones_like(c_prev), np.zeros(c_prev.shape)
            z_c, z_o = z[:, n:2 * n], z[:, 2 * n:]
            c_tilde = np.tanh(z_c)
            c = c_prev + gamma_u * c_tilde  # the constant error carousel
        gamma_o = sigmoid(z_o)
        if self.output_tanh:
            phi, dphi = np.tanh(c), tanh_slope(c)
        else:
            phi, dphi = c, 1.0
        a = gamma_o * phi
        # Jacobian factors are computed once here: the probe reuses a cache at many lags
        k = gamma_o * dphi
        coef_u = c_tilde * sigmoid_slope(z[:, :n])
        coef_c = gamma_u * tanh_slope(z_c)
        if self.forget_gate:
            coef = np.stack([coef_u, c_prev * sigmoid_slope(z_f), coef_c], axis=1)
        else:
            coef = np.stack([coef_u, coef_c], axis=1)
        coef_o = phi * sigmoid_slope(z_o)
        cache = LSTMCache(a_prev, c_prev, x, gamma_f, log_gamma_f, k, coef, coef_o)
        return np.concatenate([a, c], axis=1), cache

    # --- derivatives -------------------------------------------------------------------
    def _dz(self, cache, m_a, m_c):
        """Gradient w.r.t. the stacked pre-activations, (..., G n), and G_c, for rows m."""
        n, G = self.hidden, len(self.gates)
        lead = m_a.shape[:-1]
        bshape = (cache.k.shape[0],) + (1,) * (m_a.ndim - 2)   # broadcast (B, n) over rows
        g_c = m_a * cache.k.reshape(bshape + (n,))
        g_c += m_c
        dz = np.empty(lead + (G, n), dtype=np.result_type(m_a, cache.coef))
        np.multiply(g_c[..., None, :], cache.coef.reshape(bshape + (G - 1, n)), out=dz[..., :G - 1, :])
        np.multiply(m_a, cache.coef_o.reshape(bshape + (n,)), out=dz[..., G - 1, :])
        dz = dz.reshape(lead + (G * n,))                          # contiguous: a view
        return dz, g_c

    def _fold(self, params, cache, et=None, scale=None, mat=None) -> np.ndarray:
        """[d a<t>/d a<t-1>; d c<t>/d a<t-1>] per sequence, stored as et (2n, B, n): et[i, b]
        is row i of sequence b's matrix, so et.transpose(1, 0, 2) is the (B, 2n, n) stack.
        Row i of either block combines row i of the G gate matrices,
            d c/d a [i] = sum_g coef_g[i] W_g[i],   d a/d a [i] = k[i] d c/d a [i] + coef_o[i] W_o[i],
        so all 2n B rows come from one broadcast product (2, n, B, G) x (n, G, n): one pass
        writing et and no (B, G, n, n) temporary (the einsum it replaces cost ~1.4 ms at n = 128)."""
        n, G = self.hidden, len(self.gates)
        B = cache.k.shape[0]
        W = params["W"] if mat is None else mat   # mat = U folds d state<t>/d x<t> the same way
        cols = W.shape[1]
        dtype = np.result_type(cache.coef, W)
        coef = np.zeros((2, n, B, G), dtype=dtype)                # block, row i, sequence b, gate
        coef[1, :, :, :G - 1] = cache.coef.transpose(2, 0, 1)
        np.multiply(coef[1, :, :, :G - 1], cache.k.T[:, :, None], out=coef[0, :, :, :G - 1])
        coef[0, :, :, G - 1] = cache.coef_o.T
        if scale is not None:   # a factor per sequence, applied to O(n G) numbers, not to E
            coef *= scale[:, None]
        if et is None:
            et = np.empty((2 * n, B, cols), dtype=dtype)
        w_rows = W.reshape(G, n, cols).transpose(1, 0, 2)         # (n, G, cols): row i of each gate
        np.matmul(coef, w_rows, out=et.reshape(2, n, B, cols))
        return et

    def _da_dc(self, params, cache) -> np.ndarray:
        """[d a<t>/d a<t-1>; d c<t>/d a<t-1>] per sequence, (B, 2n, n) (a strided view)."""
        return self._fold(params, cache).transpose(1, 0, 2)

    def vjp(self, params, cache, m, out=None, scale=None, absmax=None):
        """M @ J for rows m (B, r, 2n). `out` (B, r, 2n), if given, receives the result and
        must not overlap m: the probe passes a second buffer and swaps, so no lag allocates.
        `scale` (B,), if given, multiplies each sequence's result; `absmax` (B,), if given,
        receives each sequence's max |entry| of the result. The probe renormalises with these
        (see probing/core.py, _Lag): with many rows, the scale goes into the O(n²) step matrices and
        the max is taken while the sequence's rows are still in cache."""
        B, r, S = m.shape
        n = self.hidden
        if out is None:
            out = np.empty((B, r, S), dtype=np.result_type(m, cache.k))
        out_c = out[:, :, n:]
        if _many_rows(r, n):
            # many rows (the probe): fold the gate diagonals into one (2n, n) matrix per
            # sequence, then [M_a, M_c] @ E: half the flops of the stacked (G n)-wide product
            dtype = np.result_type(cache.coef, params["W"])
            e = self._fold(params, cache, SCRATCH.get((2 * n, B, n), dtype), scale).transpose(1, 0, 2)
            # c-columns G_c Γ_f = M_a (k Γ_f) + M_c Γ_f: one multiply of a whole row by
            # [k Γ_f, Γ_f] and one add of its halves. Sequence by sequence, right after that
            # sequence's GEMM has pulled its rows of M into cache: these passes are
            # memory-bound, and in cache they cost about half (measured at n = 128)
            gf = cache.gamma_f if self.forget_gate else np.ones_like(cache.k)
            row = np.concatenate([cache.k * gf, gf], axis=1)         # (B, 2n)
            if scale is not None:
                row *= scale[:, None]
            # in M's own layout (the probe stores each sequence's M column-major), so the
            # elementwise passes below run along memory
            tmp = SCRATCH.get((r, S), np.result_type(m, row), "F" if _column_major(m) else "C")
            for b in range(B):
                np.matmul(m[b], e[b], out=out[b, :, :n])
                np.multiply(m[b], row[b], out=tmp)
                np.add(tmp[:, :n], tmp[:, n:], out=out_c[b])
                if absmax is not None:
                    absmax[b] = np.maximum(out[b].max(), -out[b].min())
            return out
        # few rows (BPTT-like): one stacked GEMM over B r rows, no per-sequence matrices
        dz, g_c = self._dz(cache, m[:, :, :n], m[:, :, n:])
        out_c[...] = g_c
        out[:, :, :n] = (dz.reshape(B * r, -1) @ params["W"]).reshape(B, r, n)
        if self.forget_gate:
            out_c *= cache.gamma_f[:, None, :]
        if scale is not None:
            out *= scale[:, None, None]
        if absmax is not None:
            absmax[...] = np.maximum(out.max(axis=(1, 2)), -out.min(axis=(1, 2)))
        return out

    def jvp(self, params, cache, v):
        """J v for columns v = [v_a; v_c] (B, 2n, p): with dz = W v_a (every gate, one GEMM),
        dc = Σ_g coef_g dz_g + Γ_f v_c and da = coef_o dz_o + k dc (the module docstring's
        Jacobian, read by columns)."""
        n, G = self.hidden, len(self.gates)
        B, _, p = v.shape
        dz = weights_times(params["W"], v[:, :n]).reshape(B, G, n, p)
        dc = (cache.coef[..., None] * dz[:, :G - 1]).sum(axis=1)
        dc += (cache.gamma_f[:, :, None] if self.forget_gate else 1.0) * v[:, n:]
        da = cache.coef_o[:, :, None] * dz[:, G - 1] + cache.k[:, :, None] * dc
        return np.concatenate([da, dc], axis=1)

    def input_vjp(self, params, cache, m):
        """m @ d state<t>/d x<t> for rows m (B, r, 2n), (B, r, d): what a stacked cell passes
        down to the layer below. Many rows: U folded per sequence like W in vjp (4 B r n d
        flops); few: one stacked GEMM through U."""
        B, r, _ = m.shape
        n, d = self.hidden, self.input_size
        if _many_rows(r, n):
            dtype = np.result_type(cache.coef, params["U"])
            e = self._fold(params, cache, SCRATCH.get((2 * n, B, d), dtype), mat=params["U"])
            return np.matmul(m, e.transpose(1, 0, 2))
        dz, _ = self._dz(cache, m[:, :, :n], m[:, :, n:])
        return (dz.reshape(B * r, -1) @ params["U"]).reshape(B, r, d)

    def jacobian(self, params, cache):
        """Dense (B, 2n, 2n): the a-columns from the formulas, the c-columns diagonal."""
        n = self.hidden
        E = self._da_dc(params, cache)
        J = np.zeros((E.shape[0], 2 * n, 2 * n), dtype=E.dtype)
        J[:, :, :n] = E
        idx = np.arange(n)
        J[:, idx, n + idx] = cache.k * cache.gamma_f
        J[:, n + idx, n + idx] = cache.gamma_f
        return J

    def backward(self, params, cache, g):
        n = self.hidden
        dz, g_c = self._dz(cache, g[:, :n], g[:, n:])
        grads = {"W": dz.T @ cache.a_prev, "U": dz.T @ cache.x, "b": dz.sum(axis=0)}
        g_prev = np.concatenate([dz @ params["W"], g_c * cache.gamma_f], axis=1)
        return g_prev, grads, dz @ params["U"]

    def direct_memory_log(self, params, cache):
        return cache.log_gamma_f


def _many_rows(r: int, n: int) -> bool:
    """Fold the gate diagonals into W per sequence (the probe's many rows) rather than scale
    the rows gate by gate: the measured crossover of the two strategies (n = 64, 128)."""
    return r >= max(8, (3 * n) // 4)


def _column_major(m: np.ndarray) -> bool:
    """Is each m[b] stored column by column (a transposed view, as the probe keeps M)?"""
    return m.strides[1] < m.strides[2]
