"""Copy memory task (Arjovsky, Shah & Bengio 2016; REFERENCES.md item 10).

Layout for `symbols` S, `delay` D and an alphabet of A symbols (T = D + 2 S steps):

    input : s_1 .. s_S | blank x (D - 1) | delimiter | blank x S
    target: blank x (D + S)                          | s_1 .. s_S

Inputs are one-hot over {blank, 1..A, delimiter} (A + 2), outputs over {blank, 1..A}.
Every step is scored. A memoryless predictor outputs blank (surely right) until the
delimiter's turn is over, then the uniform distribution over A symbols: S ln A nats lost in
T steps, so the baseline is S ln A / (D + 2 S) per step (D=100, S=10, A=8: 0.17329).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from ..options import PosInt, StrictModel
from .base import Batch, Task, one_hot


class CopyOptions(StrictModel):
    delay: PosInt = Field(100, description="steps between the last symbol and the delimiter, plus one")
    symbols: PosInt = Field(10, description="symbols to remember")
    # one symbol carries no information: the baseline would be 0 and nothing to learn
    alphabet: int = Field(8, ge=2, description="alphabet size (>= 2)")


class CopyTask(Task):
    kind = "copy"
    loss_kind = "xent"
    Options = CopyOptions

    delay = property(lambda self: self.opts["delay"])
    symbols = property(lambda self: self.opts["symbols"])
    alphabet = property(lambda self: self.opts["alphabet"])

    @property
    def length(self) -> int:
        return self.delay + 2 * self.symbols

    @property
    def input_size(self) -> int:
        return self.alphabet + 2

    @property
    def output_size(self) -> int:
        return self.alphabet + 1

    @property
    def baseline(self) -> float:
        return self.symbols * math.log(self.alphabet) / self.length

    @property
    def lag(self) -> int:
        return self.delay + self.symbols

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, S, D, A = self.length, self.symbols, self.delay, self.alphabet
        seq = rng.integers(1, A + 1, size=(S, batch))
        inp = np.zeros((T, batch), dtype=np.int64)
        inp[:S] = seq
        inp[S + D - 1] = A + 1                    # the delimiter: "recall now"
        tgt = np.zeros((T, batch), dtype=np.int64)
        tgt[D + S:] = seq
        return Batch(one_hot(inp, A + 2), tgt, np.ones((T, batch), dtype=bool))

    def sentence(self) -> str:
        return (f"copy: remember {self.symbols} symbols from an alphabet of {self.alphabet}, wait "
                f"{self.delay} steps, reproduce them after the delimiter (T = {self.length}, lag "
                f"{self.lag}); memoryless loss {self.baseline:.5f} nats per step")
