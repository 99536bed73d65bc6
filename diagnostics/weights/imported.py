"""What an import returns: an ordinary (cell, params), plus what the probe's inputs must be.

    imp = load_weights("model.safetensors", "lstm", direction="backward")
    res = probe(imp.cell, imp.params, imp.inputs(xs), lags=100)   # xs: the model's own (T, B, d)

A backward direction of a bidirectional module runs over the reversed sequence, so
`inputs` reverses time for it: the probe's step t is then the model's step T + 1 - t, and an
anchor at T is the model's first step. Layer k > 0 of a stacked module reads layer k - 1's
outputs (both directions' side by side when bidirectional); `inputs` computes them from the
model's inputs with the layers below, imported alongside (`below`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .files import check_inputs


@dataclass(frozen=True)
class Imported:
    cell: Any                # a Cell: rnn, gru (reset_after), lstm, or a Stacked of them
    params: dict             # its parameters, read-only float64
    reverse: bool            # True for the backward direction: runs over the reversed sequence
    source: str              # "file: 'rnn' (nn.LSTM, ...), layer 0, forward"
    # the layers under this one: per layer, ((cell, params) forward, (cell, params) backward or None)
    below: tuple = ()

    @property
    def input_size(self) -> int:
        """Features per step of the model's own inputs (what `inputs` takes)."""
        return self.below[0][0][0].input_size if self.below else self.cell.input_size

    def inputs(self, xs, where: str = "inputs") -> np.ndarray:
        """The model's inputs xs (T, B, d), time-major, as this cell's probe inputs: through
        the layers below, then reversed in time for the backward direction."""
        h = check_inputs(xs, self.input_size, where)
        for fwd, bwd in self.below:
            out = run(*fwd, h)
            if bwd is not None:
                out = np.concatenate([out, run(*bwd, h[::-1])[::-1]], axis=2)
            h = out
        return np.ascontiguousarray(h[::-1] if self.reverse else h)


def run(cell, params, xs) -> np.ndarray:
    """a<t> of `cell` over xs (T, B, d) from a zero state, (T, B, n)."""
    state = cell.initial_state(xs.shape[1])
    out = np.empty(xs.shape[:2] + (cell.hidden,))
    for t, x in enumerate(xs):
        state, _ = cell.step(params, state, x)
        out[t] = state[:, cell.blocks[cell.output_block]]
    return out
