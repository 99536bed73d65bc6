"""Running a cell over a sequence: the one forward pass the probe, the trainer and the tests share.

    trace = unroll(cell, params, xs)      # xs (T, B, d); trace.states (T, B, S), trace.caches[t]

State index t = 0..T-1 holds state<t+1> (the state after reading input t); the cache of step t
holds what the step's Jacobian and backward need (state<t> among it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trace:
    states: np.ndarray   # (T, B, S)
    caches: list         # T per-step caches

    @property
    def final(self) -> np.ndarray:
        return self.states[-1]


TICK_STEPS = 64   # steps between calls of an unroll's `tick` (a call per step would cost a tiny cell ~5%)


def unroll(cell, params, xs: np.ndarray, h0: np.ndarray | None = None, tick=None) -> Trace:
    """`tick(n)`, if given, is told every TICK_STEPS steps (and at the end) how many more are done."""
    T, B, _ = xs.shape
    state = cell.initial_state(B, dtype=xs.dtype) if h0 is None else h0
    states = np.empty((T, B, cell.state_size), dtype=np.result_type(state, xs))
    caches = []
    for t in range(T):
        state, cache = cell.step(params, state, xs[t])
        states[t] = state
        caches.append(cache)
        if tick is not None and t % TICK_STEPS == TICK_STEPS - 1:
            tick(TICK_STEPS)
    if tick is not None and T % TICK_STEPS:
        tick(T % TICK_STEPS)
    return Trace(states, caches)
