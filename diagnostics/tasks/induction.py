"""Induction head (Olsson et al. 2022, "In-context learning and induction heads").

A sequence of T tokens from a vocabulary of V: a pair A B at a random step in the first half,
random filler tokens elsewhere, and A again at the last step, where the answer is B ("after A
came B last time"). A appears nowhere else and B differs from A, so the answer is unique. The
cell must bind B to the token before it and recall it when that token comes back: the
mechanism Olsson et al. found behind in-context learning in transformers, here for a
recurrence.

    input : filler .. A B filler .. filler A
    target:                                 B   (the last step only)

Inputs are one-hot over the V tokens, outputs over the V tokens; only the last step is
scored. One-hot rather than a fixed random embedding, for the reasons given in
tasks/selective_copy.py.

Baseline: A and B are drawn uniformly with B != A, and the fillers (uniform over the tokens
other than A) say nothing about B. A memoryless predictor sees the step index and the current
input, A, so it knows only that B != A: the best it can do is uniform over the other V - 1
tokens, ln (V - 1) nats (V = 8: 1.94591).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from ..options import StrictModel
from .base import Batch, Task, one_hot


class InductionOptions(StrictModel):
    length: int = Field(64, ge=4, description="steps T; the pair A B sits in the first half, A comes back at step T")
    # V = 2 would leave B determined by A: nothing to remember
    vocabulary: int = Field(8, ge=3, description="tokens (>= 3)")


class InductionTask(Task):
    kind = "induction"
    loss_kind = "xent"
    Options = InductionOptions

    length = property(lambda self: self.opts["length"])
    vocabulary = property(lambda self: self.opts["vocabulary"])
    input_size = property(lambda self: self.vocabulary)
    output_size = property(lambda self: self.vocabulary)
    baseline = property(lambda self: math.log(self.vocabulary - 1))

    @property
    def lag(self) -> int:
        # B at step 2 asked for at step T
        return self.length - 2

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, V = self.length, self.vocabulary
        cols = np.arange(batch)
        a = rng.integers(0, V, size=batch)
        b = (a + rng.integers(1, V, size=batch)) % V           # uniform over the tokens != a
        # fillers uniform over the V - 1 tokens other than a: draw from V - 1, skip a
        inp = rng.integers(0, V - 1, size=(T, batch))
        inp += inp >= a
        at = rng.integers(0, T // 2, size=batch)               # A at step `at`, B right after
        inp[at, cols] = a
        inp[at + 1, cols] = b
        inp[T - 1] = a
        tgt = np.zeros((T, batch), dtype=np.int64)
        tgt[T - 1] = b
        mask = np.zeros((T, batch), dtype=bool)
        mask[T - 1] = True
        return Batch(one_hot(inp, V), tgt, mask)

    def sentence(self) -> str:
        return (f"induction: a pair A B in the first half of {self.length} tokens of {self.vocabulary}, "
                f"A again at the last step, answer B (lag up to {self.lag}); memoryless loss "
                f"ln {self.vocabulary - 1} = {self.baseline:.5f} nats")
