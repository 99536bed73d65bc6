"""A stack of cells, as PyTorch's num_layers > 1: layer l reads layer l-1's new output.

    s_0<t> = f_0(s_0<t-1>, x<t>),   s_l<t> = f_l(s_l<t-1>, y_{l-1}<t>)      l = 1..L-1

y_l<t> is layer l's output block (Cell.output_block): a<t> for today's cells, the output a
Mamba, Gated DeltaNet or mLSTM layer carries in its state without feeding it back. In a case
file: `{kind: stack, layers: [{kind: mamba, hidden: 8}, {kind: mamba, hidden: 8}]}`, each
layer's input_size set from the one below (diagnostics/run/spec.py).

The state is every layer's state side by side, [s_0; s_1; ...] (an LSTM layer's s_l is
[a_l; c_l]), so d state<t>/d state<t-1> is block lower-triangular: layer l's own Jacobian on
the diagonal, and below it the route through the inputs, d s_l<t>/d y_{l-1}<t> times layer
l-1's rows. Paths: the top layer's own ("a" and "c" of an LSTM: what a reader of a one-layer
report expects; its direct memory path c_direct or memory), "state" the whole product, and
each layer's: "l0.a", "l0.c", "l1.a", ... its blocks for a cell whose output is its a-block,
"l0.state", "l0.memory", ... its paths for one whose output is not fed back. A diagonal block
of a product of block-triangular matrices is the product of the diagonal blocks, so "l0.a"
equals probing layer 0 alone, and a layer's diagonal or Kronecker paths stay structured in
the stack (log_diagonal, kron_factors forward them); the routes between layers show in
"state". Within one selective layer the recurrence is linear in its state, so what a deep
selective model does to a gradient lives in "state".

For rows M = [M_0, ..., M_{L-1}] the product M J goes down the stack, one vjp and one
input_vjp per layer: G_{L-1} = M_{L-1};  (M J)_l = G_l J_l;  G_{l-1} = M_{l-1} + G_l d s_l/d x_l
(added to the a-block). Parameters are one flat dict, each layer's under "l{k}." ("l0.W", ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .base import Cell


def _layer_paths(c: Cell) -> tuple[str, ...]:
    """A layer's paths in the stack (as "l{k}.{path}"): every block of a cell whose output is
    its a-block (as before cells without that separation existed); the paths of one whose
    output is not fed back ("state", "memory", ...: its output block has no path)."""
    if c.output_block == "a":
        return tuple(c.blocks)
    return tuple(c.paths)


class StackedCache(NamedTuple):
    layers: tuple           # each layer's own cache
    batch: int
    dtype: Any              # the state's (complex in a complex-step check)


@dataclass(frozen=True)
class Stacked(Cell):
    """Cells stacked as PyTorch's num_layers: `Stacked((lstm0, lstm1))`."""
    layers: tuple = ()
    kind: ClassVar[str] = "stack"

    def check(self) -> None:
        if not self.layers or not all(isinstance(c, Cell) for c in self.layers):
            raise ValueError(f"layers: must be a non-empty tuple of cells, got {self.layers!r}")
        for k in range(1, len(self.layers)):
            below, cell = self.layers[k - 1], self.layers[k]
            if cell.input_size != below.readout_size:
                out = "a<t>" if below.output_block == "a" else f"output {below.output_block}<t>"
                raise ValueError(f"layers: layer {k} reads layer {k - 1}'s {out} of size {below.readout_size}, "
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
        """Each layer's blocks as "l{k}.{name}", and the top layer's under their own names
        but "state" (the stack's state is all of it)."""
        out, off = {}, self._offsets
        for k, c in enumerate(self.layers):
            for name, sl in c.blocks.items():
                out[f"l{k}.{name}"] = slice(off[k] + sl.start, off[k] + sl.stop)
        top = len(self.layers) - 1
        return {**{name: out[f"l{top}.{name}"] for name in self.layers[-1].blocks if name != "state"}, **out}

    @property
    def output_block(self) -> str:
        return self.layers[-1].output_block

    @property
    def paths(self) -> tuple[str, ...]:
        top = self.layers[-1]
        own = tuple(p for p in top.paths if p not in ("state",))
        per_layer = tuple(f"l{k}.{p}" for k, c in enumerate(self.layers) for p in _layer_paths(c))
        return own + ("state",) + per_layer

    @property
    def direct_paths(self) -> dict[str, str]:
        """The top layer's direct paths under their own names, each layer's as "l{k}.{path}"."""
        top = self.layers[-1]
        out = {p: b for p, b in top.direct_paths.items() if p in top.paths}
        for k, c in enumerate(self.layers):
            out.update({f"l{k}.{p}": f"l{k}.{b}" for p, b in c.direct_paths.items() if p in _layer_paths(c)})
        return out

    def path_block(self, path: str) -> slice:
        """"state" is the whole stack; every other path is a block (or a direct path's block)."""
        if path == "state":
            return slice(0, self.state_size)
        return self.blocks[self.direct_paths.get(path, path)]

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
            inp = s[:, c.blocks[c.output_block]]
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
                below = self.layers[k - 1]
                g[:, :, below.blocks[below.output_block]] += g_x
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
                below = self.layers[k - 1]
                gl[:, below.blocks[below.output_block]] += g_x
        return g_prev, grads, g_x

    def log_diagonal(self, params, cache):
        """Each layer's diagonal paths that are the stack's (see _forwarded)."""
        return self._forwarded(params, cache, "log_diagonal")

    def kron_factors(self, params, cache):
        """Each layer's Kronecker paths that are the stack's (see _forwarded)."""
        return self._forwarded(params, cache, "kron_factors")

    def _forwarded(self, params, cache, hook: str) -> dict | None:
        """A layer's structured path is a diagonal block of the stack's block lower-triangular
        product (or, for a direct path, that block's own factors): the same product as the
        layer alone, so its factors are the layer's. Under "l{k}.{path}", and the top
        layer's under their own names but "state" (the stack's is all of it)."""
        out, top, mine = {}, len(self.layers) - 1, set(self.paths)
        for k, c in enumerate(self.layers):
            for p, v in (getattr(c, hook)(self.layer_params(params, k), cache.layers[k]) or {}).items():
                if f"l{k}.{p}" in mine:
                    out[f"l{k}.{p}"] = v
                if k == top and p != "state" and p in mine:
                    out[p] = v
        return out or None

    def recurrent_names(self, params) -> list[str]:
        """Every layer's, under its prefix."""
        return [f"l{k}.{name}" for k, c in enumerate(self.layers)
                for name in c.recurrent_names(self.layer_params(params, k))]

    def describe(self) -> dict:
        return {"kind": self.kind, "layers": [c.describe() for c in self.layers]}
