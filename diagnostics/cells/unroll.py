"""Running a cell over a sequence: the one forward pass the probe, the trainer and the tests share.

    trace = unroll(cell, params, xs)      # xs (T, B, d); trace.states (T, B, S), trace.caches[t]
    first = first_nonfinite(trace)        # (B,) the first step whose numbers were not finite

State index t = 0..T-1 holds state<t+1> (the state after reading input t); the cache of step t
holds what the step's Jacobian and backward need (state<t> among it).

Divergence. A forward pass that overflows leaves inf or NaN in its states or caches, and what
is computed from them afterwards can look sane: a relu's mask of NaN is 0, so every Jacobian
after the overflow is a finite zero matrix. So the forward numbers themselves are checked,
per sequence: `first_nonfinite` on a trace, `NonfiniteScan` step by step (every number read
once; the per-sequence look only where one is not finite).
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


# How the forward values are read (NonfiniteScan). Small arrays are gathered, ~CHUNK_BYTES at a
# time, into one isfinite pass: a call per array costs more than reading it (GRU n = 16, 16
# sequences: 8.5 us per step against 19.5 with a sum per array; its step takes 38 us). Arrays
# of BIG entries or more are read in place, one call each (IndRNN n = 256: 18 us per step for
# a 24 us step; n = 4096: 74 us for a 1.1 ms step)
CHUNK_BYTES = 1 << 20
BIG = 2048


def _float_arrays(value, out: list) -> list:
    """The float (or complex) arrays in a state or cache: arrays, and tuples, lists and dicts
    of them, nested. Other objects (ints, dtypes, a framework's tensors) are not looked at."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            out.append(value)
    elif isinstance(value, (tuple, list, dict)):
        for v in (value.values() if isinstance(value, dict) else value):
            if type(v) is np.ndarray:   # the usual cache, a tuple of arrays: no call per entry
                if v.dtype.kind in "fc":
                    out.append(v)
            else:
                _float_arrays(v, out)
    return out


def _rows(arrays: list, batch: int) -> np.ndarray:
    """(batch,) bools: which sequences hold an inf or NaN in `arrays`. An array whose first
    axis is not the batch (fewer than 2 axes, or another length) is shared by every sequence:
    a non-finite entry there marks them all."""
    rows = np.zeros(batch, dtype=bool)
    for a in arrays:
        fin = np.isfinite(a)
        if a.ndim >= 2 and a.shape[0] == batch:
            rows |= ~fin.reshape(batch, -1).all(axis=1)
        elif not fin.all():
            rows[:] = True
    return rows


class NonfiniteScan:
    """Per sequence, the first step whose forward values held an inf or NaN, over a forward
    pass seen one step at a time: `see(step, value)` for steps 1, 2, ... (value: the step's
    state and cache), then `first`, (batch,) ints, `steps + 1` where every number was finite.
    Small arrays are read in batches of about CHUNK_BYTES, one isfinite pass each, large ones
    one at a time; only what is not all finite is looked at sequence by sequence."""

    def __init__(self, batch: int, steps: int):
        self.batch = batch
        self._first = np.full(batch, steps + 1)
        self._steps: list[tuple[int, int]] = []     # (step, where its arrays start in _arrays)
        self._arrays: list[np.ndarray] = []
        self._bytes = 0

    def see(self, step: int, value) -> None:
        self._steps.append((step, len(self._arrays)))
        for a in _float_arrays(value, []):
            if a.size < BIG:
                self._arrays.append(a)
                self._bytes += a.nbytes
            elif not _finite(a):
                rows = _rows([a], self.batch)
                self._first[rows] = np.minimum(self._first[rows], step)
        if self._bytes >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        arrays = self._arrays
        if arrays and not np.isfinite(np.concatenate(arrays, axis=None)).all():
            ends = [start for _, start in self._steps[1:]] + [len(arrays)]
            for (step, start), end in zip(self._steps, ends):
                rows = _rows(arrays[start:end], self.batch)
                self._first[rows] = np.minimum(self._first[rows], step)
        self._steps, self._arrays, self._bytes = [], [], 0

    @property
    def first(self) -> np.ndarray:
        self._flush()
        return self._first


def _finite(a: np.ndarray) -> bool:
    """Every entry of a large array finite. A contiguous one by its sum of squares (one BLAS
    call: inf or NaN in, inf or NaN out; entries above ~1e154 also overflow it, and only cost
    the exact look), others by isfinite."""
    if a.flags.c_contiguous and a.dtype == np.float64 and np.isfinite(np.vdot(a, a)):
        return True     # (vdot is not a ufunc: its overflow raises no warning)
    return bool(np.isfinite(a).all())


def first_nonfinite(trace: Trace) -> np.ndarray:
    """Per sequence, the first step s in 1..T whose state<s> or cache (the step's inputs and
    intermediate values) holds an inf or NaN: (B,) ints, T + 1 where every number is finite."""
    T, B, _ = trace.states.shape
    scan = NonfiniteScan(B, T)
    for s, cache in enumerate(trace.caches, start=1):
        scan.see(s, cache)
    bad = ~np.isfinite(trace.states).all(axis=2)             # (T, B), one pass
    return np.minimum(scan.first, np.where(bad.any(axis=0), bad.argmax(axis=0) + 1, T + 1))
