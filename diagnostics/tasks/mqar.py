"""Multi-query associative recall (Arora et al. 2023, "Zoology", section 3).

`pairs` P key-value pairs open the sequence (k_1 v_1 k_2 v_2 ... k_P v_P: P distinct keys and
P values, each value drawn independently); then `queries` Q of those keys (distinct, in random
order) come back at random steps among noise tokens in the remaining T - 2P steps, and the
answer at each query step is that key's value. The cell must store P bindings and look one up
by content, several times per sequence: the task on which Zoology found gated convolutions and
small recurrences falling behind attention.

    input : k_1 v_1 .. k_P v_P | noise, with the Q queried keys at random steps
    target:                    | the queried key's value at each query step

Inputs are one-hot over {noise, V keys, V values} (2 V + 1 channels: keys and values come from
separate halves of the vocabulary, as in Zoology), outputs over the V values; only the Q query
steps are scored. One-hot rather than a fixed random embedding, for the reasons given in
tasks/selective_copy.py.

Baseline: every value is uniform over V and independent of its key, of the other pairs and of
where the queries fall, so a predictor that sees the step index and the current input (the
queried key) but remembers nothing of the pairs can do no better than uniform: ln V nats per
scored step (V = 8: 2.07944).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..options import PosInt, StrictModel
from .base import Batch, Task, one_hot


class MQAROptions(StrictModel):
    length: int = Field(64, ge=3, description="steps T: 2 x pairs for the pairs, the rest holds the queries")
    pairs: PosInt = Field(4, description="key-value pairs to store")
    queries: PosInt = Field(4, description="keys asked for after the pairs (<= pairs)")
    vocabulary: int = Field(8, ge=2, description="keys to choose from and, separately, values (>= 2, >= pairs)")

    @model_validator(mode="after")
    def _room(self):
        if self.pairs > self.vocabulary:      # the keys are distinct
            raise PydanticCustomError("mqar", f"pairs: must be <= vocabulary = {self.vocabulary}, got {self.pairs}")
        if self.queries > self.pairs:         # the queried keys are distinct
            raise PydanticCustomError("mqar", f"queries: must be <= pairs = {self.pairs}, got {self.queries}")
        if self.length < 2 * self.pairs + self.queries:
            raise PydanticCustomError(
                "mqar", f"length: must be >= 2 x pairs plus queries = {2 * self.pairs + self.queries}, got {self.length}")
        return self


def _choose(rng: np.random.Generator, batch: int, n: int, k: int) -> np.ndarray:
    """(batch, k): k distinct draws from range(n) per row, in random order."""
    return np.argsort(rng.random((batch, n)), axis=1)[:, :k]


class MQARTask(Task):
    kind = "mqar"
    loss_kind = "xent"
    Options = MQAROptions
    sequence_exact = True   # `within`: the fraction of sequences whose every query is answered

    length = property(lambda self: self.opts["length"])
    pairs = property(lambda self: self.opts["pairs"])
    queries = property(lambda self: self.opts["queries"])
    vocabulary = property(lambda self: self.opts["vocabulary"])
    input_size = property(lambda self: 2 * self.vocabulary + 1)
    output_size = property(lambda self: self.vocabulary)
    baseline = property(lambda self: math.log(self.vocabulary))

    @property
    def lag(self) -> int:
        # the first pair's value (step 2) asked for at the last step
        return self.length - 2

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, P, Q, V = self.length, self.pairs, self.queries, self.vocabulary
        cols = np.arange(batch)[:, None]
        keys = _choose(rng, batch, V, P)                       # (B, P) in 0..V-1, distinct
        values = rng.integers(0, V, size=(batch, P))
        which = _choose(rng, batch, P, Q)                      # which pairs are asked for, in order
        steps = 2 * P + np.sort(_choose(rng, batch, T - 2 * P, Q), axis=1)
        inp = np.zeros((T, batch), dtype=np.int64)
        inp[0:2 * P:2] = (1 + keys).T                          # key tokens 1..V
        inp[1:2 * P:2] = (1 + V + values).T                    # value tokens V+1..2V
        inp[steps, cols] = 1 + keys[cols, which]
        tgt = np.zeros((T, batch), dtype=np.int64)
        tgt[steps, cols] = values[cols, which]
        mask = np.zeros((T, batch), dtype=bool)
        mask[steps, cols] = True
        return Batch(one_hot(inp, 2 * V + 1), tgt, mask)

    def sentence(self) -> str:
        return (f"mqar: {self.pairs} key-value pairs over a vocabulary of {self.vocabulary}, then "
                f"{self.queries} of the keys at random steps up to T = {self.length}, each to be "
                f"answered with its value (lag up to {self.lag}); memoryless loss ln {self.vocabulary} = "
                f"{self.baseline:.5f} nats per answer")
