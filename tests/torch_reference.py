"""References computed by PyTorch's own nn modules (no re-implementation of their equations):
one step of the module from a given state, differentiated by torch.func.jacrev, and the
module's own outputs. Used by test_torch_import.py.

For a layer of a stacked or bidirectional module, the reference module is a fresh
single-layer, single-direction module of the same type holding that layer's weights
(copied by name), fed the outputs of another fresh module holding the layers below: torch's
kernels throughout, nothing of ours.
"""
from __future__ import annotations

import numpy as np
import torch

LN10 = np.log(10.0)


def kind_of(m) -> str:
    return {torch.nn.LSTM: "lstm", torch.nn.LSTMCell: "lstm", torch.nn.GRU: "gru", torch.nn.GRUCell: "gru",
            torch.nn.RNN: "rnn", torch.nn.RNNCell: "rnn"}[type(m)]


def _same_type(m, input_size, num_layers, bidirectional):
    kw = dict(num_layers=num_layers, bias=m.bias, bidirectional=bidirectional)
    if isinstance(m, torch.nn.RNN):
        kw["nonlinearity"] = m.nonlinearity
    return type(m)(input_size, m.hidden_size, **kw).double()


def layer_module(m, k: int, reverse: bool):
    """A one-layer, one-direction module holding layer k's weights in one direction."""
    dirs = 2 if m.bidirectional else 1
    d = m.input_size if k == 0 else m.hidden_size * dirs
    sub = _same_type(m, d, 1, False)
    sfx = f"_l{k}" + ("_reverse" if reverse else "")
    sd = m.state_dict()
    sub.load_state_dict({name + "_l0": sd[name + sfx] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                         if name + sfx in sd})
    return sub


def lower_outputs(m, k: int, xs: torch.Tensor) -> torch.Tensor:
    """The input layer k of m reads: the output of a module holding m's layers 0..k-1."""
    if k == 0:
        return xs
    low = _same_type(m, m.input_size, k, m.bidirectional)
    sd = m.state_dict()
    low.load_state_dict({key: v for key, v in sd.items() if int(key.split("_l")[1].split("_")[0]) < k})
    with torch.no_grad():
        return low(xs)[0]


class StepRef:
    """One step of a module (an nn.RNN/GRU/LSTM with any num_layers, one direction, or a *Cell),
    as a map of our flat state (S,) -> (S,) for one sequence: per layer [h] or [h; c]."""

    def __init__(self, mod):
        self.mod, self.kind = mod, kind_of(mod)
        self.is_cell = isinstance(mod, torch.nn.RNNCellBase)
        self.layers = 1 if self.is_cell else mod.num_layers
        self.H = mod.hidden_size
        self.per = 2 * self.H if self.kind == "lstm" else self.H
        self.S = self.layers * self.per

    def __call__(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        H, L = self.H, self.layers
        hs = s.reshape(L, self.per)
        h, c = hs[:, :H], hs[:, H:]
        if self.is_cell:
            out = self.mod(x[None], (h, c) if self.kind == "lstm" else h)
            return torch.cat(out, dim=1)[0] if self.kind == "lstm" else out[0]
        hx = (h[:, None].contiguous(), c[:, None].contiguous()) if self.kind == "lstm" else h[:, None].contiguous()
        _, hn = self.mod(x[None, None], hx)
        if self.kind == "lstm":
            return torch.cat([hn[0][:, 0], hn[1][:, 0]], dim=1).reshape(-1)
        return hn[:, 0].reshape(-1)

    def run(self, us: np.ndarray):
        """States (T + 1, B, S) from zero and step Jacobians (T, B, S, S), all by the module."""
        T, B, _ = us.shape
        u = torch.as_tensor(us, dtype=torch.float64)
        states = torch.zeros(T + 1, B, self.S, dtype=torch.float64)
        jac = torch.zeros(T, B, self.S, self.S, dtype=torch.float64)
        with torch.no_grad():
            for t in range(T):
                for b in range(B):
                    states[t + 1, b] = self(states[t, b], u[t, b])
        for t in range(T):
            for b in range(B):
                jac[t, b] = torch.func.jacrev(self)(states[t, b], u[t, b]).detach()
        return states.numpy(), jac.numpy()


def reference_curves(jac: np.ndarray, blocks: dict, paths, K: int, direct=None):
    """log10 spectral and Frobenius norms of blocks of J_T ... J_{T-k+1}, k = 1..K, per
    sequence: {(path, norm): (B, K)}. Products are renormalised as they go (log10 kept apart),
    so they neither under- nor overflow. direct: the c-block's slice whose diagonal products
    are the direct memory path (c_direct)."""
    T, B, S, _ = jac.shape
    out = {(p, n): np.empty((B, K)) for p in paths for n in ("spectral", "frobenius")}
    for b in range(B):
        P, scale = np.eye(S), 0.0
        dlog = np.zeros(S) if direct is None else np.zeros(direct.stop - direct.start)
        for k in range(1, K + 1):
            P = P @ jac[T - k, b]
            big = np.abs(P).max()
            if big > 0:
                P, scale = P / big, scale + np.log10(big)
            if direct is not None:
                with np.errstate(divide="ignore"):
                    dlog = dlog + np.log(np.abs(np.diag(jac[T - k, b][direct, direct])))
            for p in paths:
                if p == "c_direct":
                    out[(p, "spectral")][b, k - 1] = dlog.max() / LN10
                    out[(p, "frobenius")][b, k - 1] = 0.5 * np.logaddexp.reduce(2 * dlog) / LN10
                    continue
                sl = slice(0, S) if p == "state" else blocks[p]
                blk = P[sl, sl]
                with np.errstate(divide="ignore"):
                    out[(p, "spectral")][b, k - 1] = np.log10(np.linalg.norm(blk, 2)) + scale
                    out[(p, "frobenius")][b, k - 1] = np.log10(np.linalg.norm(blk)) + scale
    return out
