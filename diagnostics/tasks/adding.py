"""Adding problem, in two forms (REFERENCES.md item 11).

variant "urnn" (Arjovsky et al. 2016, after Le et al. 2015): channel 0 holds values U[0, 1],
channel 1 marks one step uniformly in the first half and one in the second half; the target,
scored at the last step only, is the sum of the two marked values. Predicting the mean 1
loses Var(X1 + X2) = 2/12 = 1/6.

variant "hochreiter1997" (LSTM paper, experiment 4): values U[-1, 1]; the first marker falls
in the first 10 steps, the second in the first T/2 - 1 steps (distinct, never step 1); the
first and last steps otherwise carry marker -1; if step 1 is marked, X1 is set to 0. Target
0.5 + (X1 + X2) / 4. Predicting 0.5 loses (Var X1 + Var X2) / 16 with Var X2 = 1/3 and
Var X1 = 0.9 / 3 (X1 = 0 with probability 1/10): 19/480 = 0.039583. The paper draws lengths
in [T, T + T/10]; here every sequence has length T so that a batch is one array.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..options import StrictModel
from .base import Batch, Task

VARIANTS = ("urnn", "hochreiter1997")


class AddingOptions(StrictModel):
    length: int = Field(100, ge=2, description="steps T; one marker in each half")
    variant: Literal[VARIANTS] = Field("urnn", description="urnn (values U[0,1], target the sum) or hochreiter1997")

    @model_validator(mode="after")
    def _room(self):
        if self.variant == "hochreiter1997" and self.length < 24:   # room for both marker ranges
            raise PydanticCustomError("adding", f"length: must be >= 24 for the hochreiter1997 variant, got {self.length}")
        return self


class AddingTask(Task):
    kind = "adding"
    loss_kind = "mse"
    Options = AddingOptions
    within_tolerance = 0.04   # the 1997 paper's success: |error| < 0.04 (REFERENCES item 23)

    length = property(lambda self: self.opts["length"])
    variant = property(lambda self: self.opts["variant"])
    input_size = property(lambda self: 2)
    output_size = property(lambda self: 1)

    @property
    def baseline(self) -> float:
        return 1.0 / 6.0 if self.variant == "urnn" else 19.0 / 480.0

    @property
    def lag(self) -> int:
        # the earliest marker can sit this far before the scored step
        return self.length - 1

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, B = self.length, batch
        cols = np.arange(B)
        x = np.zeros((T, B, 2))
        if self.variant == "urnn":
            x[:, :, 0] = rng.uniform(0.0, 1.0, size=(T, B))
            half = T // 2
            i1 = rng.integers(0, half, size=B)
            i2 = rng.integers(half, T, size=B)
            x[i1, cols, 1] = 1.0
            x[i2, cols, 1] = 1.0
            y = x[i1, cols, 0] + x[i2, cols, 0]
        else:
            x[:, :, 0] = rng.uniform(-1.0, 1.0, size=(T, B))
            x[0, :, 1] = x[T - 1, :, 1] = -1.0
            i1 = rng.integers(0, 10, size=B)
            # second marker: uniform over steps 1 .. T/2 - 2 other than i1
            choices = np.where(i1 == 0, T // 2 - 2, T // 2 - 3)
            i2 = 1 + np.floor(rng.uniform(size=B) * choices).astype(np.int64)
            i2 += (i1 > 0) & (i2 >= i1)
            x[i1, cols, 1] = 1.0
            x[i2, cols, 1] = 1.0
            x[0, i1 == 0, 0] = 0.0  # the paper's rule when the first pair is marked
            y = 0.5 + (x[i1, cols, 0] + x[i2, cols, 0]) / 4.0
        tgt = np.zeros((T, B, 1))
        tgt[-1, :, 0] = y
        mask = np.zeros((T, B), dtype=bool)
        mask[-1] = True
        return Batch(x, tgt, mask)

    def sentence(self) -> str:
        what = ("sum of two marked U[0,1] values, one in each half" if self.variant == "urnn"
                else "0.5 + (X1 + X2)/4 of two marked U[-1,1] values (Hochreiter & Schmidhuber 1997)")
        return (f"adding ({self.variant}): T = {self.length} steps, output the {what} at the last "
                f"step; memoryless loss MSE {self.baseline:.5f}")
