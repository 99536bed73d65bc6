"""A fused forward/BPTT for the LSTM cell, used by the trainer on untracked steps.

Same equations, parameters and gate order as diagnostics/cells/lstm.py (stacked W (G n, n),
U (G n, d), b (G n,), gates (u, f, c, o) or (u, c, o) without the forget gate), organised
for speed instead of for the probe:

- the input projection X U^T + b of all T steps is one GEMM before the time loop, and the
  weight gradients dW = Σ_t dz<t>^T a<t-1>, dU = Σ_t dz<t>^T x<t> are one GEMM each after it,
  so the loop holds a single (B, n) x (n, G n) product per step in each direction;
- every intermediate lives in buffers allocated once per shape and written in place, because
  at n = 64, B = 32 a step costs a few microseconds of arithmetic and the rest is overhead;
- the backward multipliers that do not depend on the incoming gradient (gate derivatives,
  o φ', ...) are computed for all T steps at once after the forward loop, leaving seven
  small numpy calls and one GEMM per step in the backward loop;
- gate rows are reordered (u, f, o, c) so one σ call covers all sigmoid gates;
- σ(z) = (1 + tanh(z / 2)) / 2, overflow-free without the sign split.

The per-step caches that the probe and the temporal components need are not kept; the
trainer uses the cell's own step/backward on tracked steps. tests/test_training.py checks that
both give the same loss and gradients.
"""
from __future__ import annotations

import numpy as np

from ..cells.lstm import LSTM
from .bptt import Gradients
from .readout import gather, loss_and_dy, readout_backward, readout_forward


def supports(cell) -> bool:
    """The stock LSTM class itself, every option of which is fused here (forget_gate,
    output_tanh; chrono and the inits act on init only). Not a subclass: it inherits kind
    "lstm" but may change the equations, and was trained with these on untracked steps."""
    return type(cell) is LSTM


class FusedLSTM:
    def __init__(self, cell):
        self.cell, self.n = cell, cell.hidden
        self.G = len(cell.gates)
        self.forget = cell.forget_gate
        self.out_tanh = cell.output_tanh
        self._shape = None

    def _alloc(self, T, B, d, dtype):
        if self._shape == (T, B, d, dtype):
            return
        n, G = self.n, self.G
        self._shape = (T, B, d, dtype)
        self.Z = np.empty((T, B, G * n), dtype)      # gate activations (after σ / tanh)
        self.A = np.zeros((T + 1, B, n), dtype)      # A[0] = a<0> = 0
        self.C = np.zeros((T + 1, B, n), dtype)
        self.P = np.empty((T, B, n), dtype)          # φ(c<t>): tanh(c<t>) or c<t>
        self.DZ = np.empty((T, B, G * n), dtype)
        self.GA = np.empty((T, B, n), dtype)         # dL/da<t> per step
        self.Q = np.empty((T, B, (G - 2) * n), dtype)
        self.tmp = np.empty((B, n), dtype)
        self.gc = np.empty((B, n), dtype)
        self.zw = np.empty((B, G * n), dtype)

    def _sigmoid_(self, z):
        """In place: z holds z/2 (rows pre-halved), becomes σ(z) = (1 + tanh(z/2)) / 2."""
        np.tanh(z, out=z)
        z += 1.0
        z *= 0.5

    def _permuted(self, params):
        """W, U, b with the gate rows reordered (u, [f,] o, c): all sigmoid gates contiguous,
        so one in-place σ covers them; gradients are permuted back at the end."""
        n, G = self.n, self.G
        if not hasattr(self, "perm"):
            order = list(range(G - 2)) + [G - 1, G - 2]
            self.perm = np.concatenate([np.arange(g * n, (g + 1) * n) for g in order])
            # σ(z) = (1 + tanh(z/2)) / 2: the sigmoid rows are halved here, once per call
            self.half = np.where(np.arange(G * n) < (G - 1) * n, 0.5, 1.0)[:, None]
        h = self.half.astype(params["W"].dtype)
        return params["W"][self.perm] * h, params["U"][self.perm] * h, params["b"][self.perm] * h[:, 0]

    def forward(self, params, X):
        """Hidden states a<1..T> (T, B, n), a view into a buffer reused by the next call."""
        T, B, d = X.shape
        n, G = self.n, self.G
        self._alloc(T, B, d, X.dtype)
        W, U, b = self._permuted(params)
        self.Wp, W_T = W / self.half.astype(W.dtype), np.ascontiguousarray(W.T)  # Wp: unscaled
        Z, A, C, P, zw = self.Z, self.A, self.C, self.P, self.zw
        np.matmul(X.reshape(T * B, d), U.T, out=Z.reshape(T * B, G * n))
        Z += b
        cs = (G - 1) * n                              # the candidate block comes last
        for t in range(T):
            z = Z[t]
            np.matmul(A[t], W_T, out=zw)
            z += zw
            self._sigmoid_(z[:, :cs])                 # u, (f), o
            np.tanh(z[:, cs:], out=z[:, cs:])         # c~
            c = C[t + 1]
            np.multiply(z[:, :n], z[:, cs:], out=c)
            if self.forget:
                np.multiply(z[:, n:2 * n], C[t], out=self.tmp)
                c += self.tmp
            else:
                c += C[t]                             # the constant error carousel
            if self.out_tanh:
                np.tanh(c, out=P[t])
            else:
                P[t] = c
            np.multiply(z[:, cs - n:cs], P[t], out=A[t + 1])
        return A[1:]

    def _factors(self):
        """Every backward multiplier that does not depend on the incoming gradient, computed for
        all T steps at once after the forward loop (a few large numpy calls instead of many
        small ones inside the loop):
            K  = o φ'                       gc += ga K          (a = o φ(c))
            Q  = [c~ σ'_u, c<t-1> σ'_f]     dz_(u,f) = gc Q
            PO = φ σ'_o                     dz_o = ga PO
            UC = u (1 - c~²)                dz_c = gc UC        with σ' = σ (1 - σ)."""
        n, G = self.n, self.G
        cs = (G - 1) * n
        Z, C, P = self.Z, self.C, self.P
        sp = 1.0 - Z[..., :cs]
        sp *= Z[..., :cs]
        ct = Z[..., cs:]
        if self.out_tanh:
            self.K = 1.0 - P * P
            self.K *= Z[..., cs - n:cs]
        else:
            self.K = Z[..., cs - n:cs]
        T, B = Z.shape[:2]
        q = self.Q.reshape(T, B, G - 2, n)            # gates u (and f), side by side
        np.multiply(ct, sp[..., :n], out=q[:, :, 0])
        if self.forget:
            np.multiply(C[:-1], sp[..., n:2 * n], out=q[:, :, 1])
        self.PO = P * sp[..., cs - n:cs]
        self.UC = 1.0 - ct * ct
        self.UC *= Z[..., :n]

    def backward(self, params, X, g_out):
        """(grads {W, U, b}, flow (T,) ||dL/da<t>||) from g_out = dL/da<t> (T, B, n) of the read-out."""
        T, B, d = X.shape
        n, G = self.n, self.G
        cs = (G - 1) * n
        self._factors()
        Z, A, DZ, GA, K, Q, PO, UC = self.Z, self.A, self.DZ, self.GA, self.K, self.Q, self.PO, self.UC
        W = self.Wp
        gc, tmp = self.gc, self.tmp
        gc[...] = 0.0
        GA[T - 1] = 0.0
        g = G - 2                                     # sigmoid gates fed by the memory: u (, f)
        for t in range(T - 1, -1, -1):
            dz, ga = DZ[t], GA[t]
            ga += g_out[t]                            # GA[t] = dL/da<t+1>, kept for the flow
            np.multiply(ga, K[t], out=tmp)
            gc += tmp                                 # the memory's gradient
            np.multiply(gc[:, None, :], Q[t].reshape(B, g, n), out=dz[:, :g * n].reshape(B, g, n))
            np.multiply(ga, PO[t], out=dz[:, cs - n:cs])
            np.multiply(gc, UC[t], out=dz[:, cs:])
            if self.forget:
                gc *= Z[t, :, n:2 * n]                # the direct memory path Γ_f
            if t:
                np.matmul(dz, W, out=GA[t - 1])       # dL/da<t> through the gates
        flow = np.sqrt(np.einsum("tbn,tbn->t", GA, GA).real)
        DZf = DZ.reshape(T * B, G * n)
        grads = {"W": np.empty_like(W), "U": np.empty((G * n, d), W.dtype), "b": np.empty(G * n, W.dtype)}
        grads["W"][self.perm] = DZf.T @ A[:-1].reshape(T * B, n)
        grads["U"][self.perm] = DZf.T @ X.reshape(T * B, d)
        grads["b"][self.perm] = DZf.sum(axis=0)
        return grads, flow

    def loss_and_grads(self, params, readout, batch, loss_kind) -> Gradients:
        """As bptt.loss_and_grads, without the trace (None)."""
        a = self.forward(params, batch.inputs)
        h, tm, bm = gather(a, batch.mask)
        loss, dy, acc = loss_and_dy(readout_forward(readout, h), batch.targets[tm, bm], loss_kind)
        grads, dh = readout_backward(readout, h, dy)
        g_out = np.zeros(a.shape, dtype=a.dtype)
        g_out[tm, bm] = dh
        cell_grads, flow = self.backward(params, batch.inputs, g_out)
        grads.update(cell_grads)
        return Gradients(loss, acc, grads, flow, None, g_out)
