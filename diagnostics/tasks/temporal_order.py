"""Temporal order (Hochreiter & Schmidhuber 1997, experiments 6a and 6b; REFERENCES.md item 12).

Symbols E (start), B (end), X, Y and distractors a, b, c, d, one-hot (d = 8). A sequence is
E, then distractors, with X or Y placed at 2 (6a) or 3 (6b) random steps drawn from fixed
windows, and B last; the class of the (X/Y, X/Y[, X/Y]) pattern is scored at the last step:
4 classes (XX, XY, YX, YY) for 6a, 8 for 6b. The paper's windows for length 100 are
[10, 20] and [50, 60] (6a), [10, 20], [33, 43] and [66, 76] (6b); `length` scales them in
proportion. The paper's lengths vary in [100, 110]; here every sequence has length T so
that a batch is one array. Without memory of the early steps every class is equally likely:
baseline ln 4 (6a) or ln 8 (6b) nats.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from ..options import StrictModel
from .base import Batch, Task, one_hot

E, B_, X, Y = 0, 1, 2, 3           # symbol indices; 4..7 are the distractors a, b, c, d
WINDOWS = {"6a": ((10, 20), (50, 60)), "6b": ((10, 20), (33, 43), (66, 76))}


class TemporalOrderOptions(StrictModel):
    variant: Literal[tuple(WINDOWS)] = Field("6a", description="6a (two relevant symbols) or 6b (three)")
    # windows must stay distinct and between the start and end symbols once scaled
    length: int = Field(100, ge=12, description="steps T; the windows scale with it")


class TemporalOrderTask(Task):
    kind = "temporal_order"
    loss_kind = "xent"
    Options = TemporalOrderOptions

    variant = property(lambda self: self.opts["variant"])
    length = property(lambda self: self.opts["length"])
    input_size = property(lambda self: 8)

    @property
    def windows(self) -> list[tuple[int, int]]:
        T = self.length
        return [(max(1, round(lo * T / 100)), min(T - 2, round(hi * T / 100)))
                for lo, hi in WINDOWS[self.variant]]

    @property
    def output_size(self) -> int:
        return 2 ** len(WINDOWS[self.variant])

    @property
    def baseline(self) -> float:
        return math.log(self.output_size)

    @property
    def lag(self) -> int:
        return self.length - 1 - self.windows[0][0]

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T = self.length
        cols = np.arange(batch)
        sym = rng.integers(4, 8, size=(T, batch))
        sym[0], sym[-1] = E, B_
        label = np.zeros(batch, dtype=np.int64)
        for lo, hi in self.windows:
            pos = rng.integers(lo, hi + 1, size=batch)
            bit = rng.integers(0, 2, size=batch)     # 0 -> X, 1 -> Y
            sym[pos, cols] = X + bit
            label = 2 * label + bit                  # first relevant symbol is the high bit
        tgt = np.zeros((T, batch), dtype=np.int64)
        tgt[-1] = label
        mask = np.zeros((T, batch), dtype=bool)
        mask[-1] = True
        return Batch(one_hot(sym, 8), tgt, mask)

    def sentence(self) -> str:
        w = ", ".join(f"[{lo}, {hi}]" for lo, hi in self.windows)
        return (f"temporal order {self.variant}: T = {self.length}, classify the order of X/Y symbols "
                f"placed in windows {w} among distractors ({self.output_size} classes, scored at the "
                f"last step); memoryless loss ln {self.output_size} = {self.baseline:.5f} nats")
