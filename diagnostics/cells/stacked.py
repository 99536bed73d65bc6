"""A stack of cells, as PyTorch's num_layers > 1: layer l reads layer l-1's new a<t>.

    s_0<t> = f_0(s_0<t-1>, x<t>),   s_l<t> = f_l(s_l<t-1>, a_{l-1}<t>)      l = 1..L-1

The state is every layer's state side by side, [s_0; s_1; ...] (an LSTM layer's s_l is
[a_l; c_l]), so d state<t>/d state<t-1> is block lower-triangular: layer l's own Jacobian on
the diagonal, and below it the route through the inputs, d s_l<t>/d a_{l-1}<t> times layer
l-1's rows. Paths: "a" and "c" are the top layer's blocks (what a reader of a one-layer
report expects), "l0.a", "l0.c", "l1.a", ... each layer's own, "state" the whole product, and
"c_direct" the top layer's direct memory path. A diagonal block of a product of block-
triangular matrices is the product of the diagonal blocks, so "l0.a" equals probing layer 0
alone; the routes between layers show in "state".

For rows M = [M_0, ..., M_{L-1}] the product M J goes down the stack, one vjp and one
input_vjp per layer: G_{L-1} = M_{L-1};  (M J)_l = G_l J_l;  G_{l-1} = M_{l-1} + G_l d s_l/d x_l
(added to the a-block). Parameters are one flat dict, each layer's under "l{k}." ("l0.W", ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .base import Cell


class StackedCache(NamedTuple):
    layers: tuple           # each layer's own cache
    batch: int
    dtype: Any              # the state's (complex in a complex-step check)


@dataclass(frozen=True)
class Stacked(Cell):
    """Cells stacked as PyTorch's num_layers: `Stacked((lstm0, lstm1))`."""
    layers: tuple = ()
    kind: ClassVar[str] = "stacked"

    def check(self) -> None:
        if not self.layers or not all(isinstance(c, Cell) for c in self.layers):
            raise ValueError(f"layers: must be a non-empty tuple of cells, got {self.layers!r}")
        for k in range(1, len(self.layers)):
            below, cell = self.layers[k - 1], self.layers[k]
            if cell.input_size != below.hidden:
                raise ValueError(f"layers: layer {k} reads layer {k - 1}'s a<t> of size {below.hidden}, "
                                 f"but its input_size is {cell.input_size}")

    # --- sizes and layout -------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def hidden(self) -> int:
        return self.layers[-1].hidden

    @property
    def _offsets(self) -> list[int]:
        out = [0]
        for c in self.layers:
            out.append(out[-1] + c.state_size)
        return out

    def _slice(self, k: int) -> slice:
        off = self._offsets
        return slice(off[k], off[k + 1])

    @property
    def state_size(self) -> int:
        return self._offsets[-1]

    @property
    def blocks(self) -> dict[str, slice]:
        out, off = {}, self._offsets
        for k, c in enumerate(self.layers):
            for name, sl in c.blocks.items():
                out[f"l{k}.{name}"] = slice(off[k] + sl.start, off[k] + sl.stop)
        top = len(self.layers) - 1
        return {**{name: out[f"l{top}.{name}"] for name in self.layers[-1].blocks}, **out}

    @property
    def paths(self) -> tuple[str, ...]:
        top = self.layers[-1]
        own = tuple(p for p in top.paths if p not in ("state",))
        per_layer = tuple(f"l{k}.{b}" for k, c in enumerate(self.layers) for b in c.blocks)
        return own + ("state",) + per_layer

    @property
    def analytic(self) -> bool:
        return all(c.analytic for c in self.layers)

    @property
    def parallel_safe(self) -> bool:   # pure when every layer is
        return all(getattr(c, "parallel_safe", False) for c in self.layers)

    def layer_params(self, params, k: int) -> dict[str, np.ndarray]:
        """Layer k's own parameters, under their own names (views, no copies)."""
        pre = f"l{k}."
        return {key[len(pre):]: v for key, v in params.items() if key.startswith(pre)}

    # --- the pure functions -------------------------------------------------------------
    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {f"l{k}.{name}": v for k, c in enumerate(self.layers) for name, v in c.init(rng).items()}

    def step(self, params, state, x):
        news, caches, inp = [], [], x
        for k, c in enumerate(self.layers):
            s, cache = c.step(self.layer_params(params, k), state[:, self._slice(k)], inp)
            news.append(s)
            caches.append(cache)
            inp = s[:, c.blocks["a"]]
        new = np.concatenate(news, axis=1)
        return new, StackedCache(tuple(caches), new.shape[0], new.dtype)

    def _down(self, params, cache, m, out=None, to_input=False):
        """Rows m (B, r, S) down the stack: writes m @ J into out (if given); returns the rows'
        gradient reaching x<t> (B, r, d) if to_input (the probe never needs layer 0's)."""
        top = len(self.layers) - 1
        g, g_x = m[:, :, self._slice(top)], None
        for k in range(top, -1, -1):
            c, p = self.layers[k], self.layer_params(params, k)
            if out is not None:
                out[:, :, self._slice(k)] = c.vjp(p, cache.layers[k], g)
            if k > 0 or to_input:
                g_x = c.input_vjp(p, cache.layers[k], g)
            if k > 0:
                g = np.array(m[:, :, self._slice(k - 1)], dtype=np.result_type(m, g_x))
                g[:, :, self.layers[k - 1].blocks["a"]] += g_x
        return g_x

    def vjp(self, params, cache, m):
        out = np.empty(m.shape, dtype=np.result_type(m, cache.dtype))
        self._down(params, cache, m, out)
        return out

    def input_vjp(self, params, cache, m):
        return self._down(params, cache, m, to_input=True)

    def jacobian(self, params, cache):
        """Dense (B, S, S): the identity's rows through vjp."""
        S = self.state_size
        return self.vjp(params, cache, np.broadcast_to(np.eye(S), (cache.batch, S, S)))

    def backward(self, params, cache, g):
        g_prev, grads = np.empty_like(g), {}
        top = len(self.layers) - 1
        gl = g[:, self._slice(top)]
        for k in range(top, -1, -1):
            c = self.layers[k]
            gp, gr, g_x = c.backward(self.layer_params(params, k), cache.layers[k], gl)
            g_prev[:, self._slice(k)] = gp
            grads.update({f"l{k}.{name}": v for name, v in gr.items()})
            if k > 0:
                gl = g[:, self._slice(k - 1)].copy()
                gl[:, self.layers[k - 1].blocks["a"]] += g_x
        return g_prev, grads, g_x

    def log_diagonal(self, params, cache):
        """The top layer's direct memory path, whichever hook declares it (the LSTM's
        direct_memory_log, the sLSTM's own log_diagonal); the layers' other diagonal paths
        are not the stack's, whose a and c are blocks of a dense product."""
        top = len(self.layers) - 1
        lg = self.layers[-1].log_diagonal(self.layer_params(params, top), cache.layers[top])
        return {"c_direct": lg["c_direct"]} if lg and "c_direct" in lg else None

    def describe(self) -> dict:
        return {"kind": self.kind, "layers": [c.describe() for c in self.layers]}
