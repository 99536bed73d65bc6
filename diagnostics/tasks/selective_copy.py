"""Selective copying (Gu & Dao 2023, "Mamba", section 3.1 and figure 2).

`tokens` K data tokens from a vocabulary of V sit at random positions (distinct, in order)
among noise tokens in the first T - K steps; the last K steps each carry the marker, and the
answer at the j-th marker step is the j-th data token. Unlike the copy task the spacing
varies from sequence to sequence, so a fixed delay line (a time-invariant convolution) cannot
solve it: the cell must decide from the input what to keep, which is what selectivity is for.

    input : noise / data tokens at K random positions in steps 1 .. T - K | marker x K
    target:                                                              | d_1 .. d_K

Inputs are one-hot over {noise, 1..V, marker} (V + 2 channels), outputs over the V data
tokens; only the K marker steps are scored. One-hot rather than a fixed random embedding: the
cell's own input weights are then the embedding, so nothing outside the cell carries a seed,
and every token is exactly representable (no collisions to learn around) at these small V.

Baseline: the data tokens are drawn independently and uniformly from V (with repetition), so
at a marker step neither the step index nor the current input (always the marker) says
anything about the answer; the best memoryless prediction is uniform over V and loses ln V
nats at every scored step, and the mean over scored steps is ln V (V = 8: 2.07944).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..options import PosInt, StrictModel
from .base import Batch, Task, one_hot


class SelectiveCopyOptions(StrictModel):
    length: int = Field(64, ge=2, description="steps T: T - tokens steps to read, then one marker per token")
    tokens: PosInt = Field(4, description="data tokens to reproduce, in order")
    # one token carries no information: the baseline would be 0 and nothing to learn
    vocabulary: int = Field(8, ge=2, description="data tokens to choose from (>= 2)")

    @model_validator(mode="after")
    def _room(self):
        if self.length < 2 * self.tokens:   # the tokens must fit before the markers
            raise PydanticCustomError(
                "selective_copy", f"length: must be >= 2 x tokens = {2 * self.tokens}, got {self.length}")
        return self


class SelectiveCopyTask(Task):
    kind = "selective_copy"
    loss_kind = "xent"
    Options = SelectiveCopyOptions
    sequence_exact = True   # `within`: the fraction of sequences whose every token comes back

    length = property(lambda self: self.opts["length"])
    tokens = property(lambda self: self.opts["tokens"])
    vocabulary = property(lambda self: self.opts["vocabulary"])
    input_size = property(lambda self: self.vocabulary + 2)
    output_size = property(lambda self: self.vocabulary)
    baseline = property(lambda self: math.log(self.vocabulary))

    @property
    def lag(self) -> int:
        # a first token at step 1 is answered at the first marker, step T - K + 1
        return self.length - self.tokens

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, K, V = self.length, self.tokens, self.vocabulary
        # K distinct positions among the first T - K steps, in order: the K smallest of a
        # random permutation's keys, drawn for the whole batch at once
        pos = np.sort(np.argsort(rng.random((batch, T - K)), axis=1)[:, :K], axis=1)   # (B, K)
        data = rng.integers(1, V + 1, size=(batch, K))
        inp = np.zeros((T, batch), dtype=np.int64)
        cols = np.arange(batch)[:, None]
        inp[pos, cols] = data
        inp[T - K:] = V + 1                                    # the markers: "recall now"
        tgt = np.zeros((T, batch), dtype=np.int64)
        tgt[T - K:] = data.T - 1                               # classes 0..V-1
        mask = np.zeros((T, batch), dtype=bool)
        mask[T - K:] = True
        return Batch(one_hot(inp, V + 2), tgt, mask)

    def sentence(self) -> str:
        return (f"selective_copy: {self.tokens} tokens of {self.vocabulary} at random positions among noise "
                f"in the first {self.length - self.tokens} steps, reproduced in order at {self.tokens} "
                f"markers (T = {self.length}, lag up to {self.lag}); memoryless loss ln {self.vocabulary} = "
                f"{self.baseline:.5f} nats per answer")
