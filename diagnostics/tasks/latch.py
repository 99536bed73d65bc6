"""Latch: the noise-free long-lag task (Hochreiter & Schmidhuber 1997, experiment 2a;
REFERENCES.md item 13), with noisy distractors as in experiment 2b.

Two sequences (y, a_1, ..., a_{p-1}, y) and (x, a_1, ..., a_{p-1}, x): the network reads the
first p symbols (one-hot over x, y, a_1..a_{p-1}, so d = p + 1) and must predict the last
one, which equals the first, p - 1 steps later. Only that prediction is scored. With
`noise: true` the middle symbols are drawn at random from a_1..a_{p-1} (2b), so they carry no
timing cue. Without memory of step 1 both answers are equally likely: baseline ln 2 nats.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from ..options import StrictModel
from .base import Batch, Task, one_hot


class LatchOptions(StrictModel):
    p: int = Field(100, ge=2, description="sequence length; the first symbol is asked for p - 1 steps later")
    noise: bool = Field(False, description="random distractors (experiment 2b) instead of the fixed chain (2a)")


class LatchTask(Task):
    kind = "latch"
    loss_kind = "xent"
    Options = LatchOptions

    p = property(lambda self: self.opts["p"])
    noise = property(lambda self: self.opts["noise"])
    length = property(lambda self: self.p)
    input_size = property(lambda self: self.p + 1)
    output_size = property(lambda self: 2)
    baseline = property(lambda self: math.log(2.0))
    lag = property(lambda self: self.p - 1)

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        p = self.p
        first = rng.integers(0, 2, size=batch)                     # 0 = x, 1 = y
        if self.noise:
            sym = rng.integers(2, p + 1, size=(p, batch))
        else:
            sym = np.repeat(np.arange(1, p + 1)[:, None], batch, axis=1)  # a_i has index i + 1
        sym[0] = first
        tgt = np.zeros((p, batch), dtype=np.int64)
        tgt[-1] = first
        mask = np.zeros((p, batch), dtype=bool)
        mask[-1] = True
        return Batch(one_hot(sym, p + 1), tgt, mask)

    def sentence(self) -> str:
        mid = "random distractors (2b)" if self.noise else "the fixed chain a_1..a_{p-1} (2a)"
        return (f"latch: p = {self.p}, remember whether the first symbol was x or y through "
                f"{mid} and predict it at step {self.p} (lag {self.lag}); memoryless loss "
                f"ln 2 = {self.baseline:.5f} nats")
