"""`none`: inputs only, for studying cells at initialisation (no targets, no training).

    {kind: none, length: T, input_size: d, inputs: zeros | gaussian, scale: s}

Gaussian inputs are N(0, scale²) i.i.d. per step and channel; zeros ignore `scale`.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from ..options import STRICT, NonNegFloat, PosInt
from .base import Batch, Task


class NoneOptions(BaseModel):
    model_config = STRICT
    length: PosInt = Field(100, description="steps of one episode")
    input_size: PosInt = Field(1, description="input channels d")
    inputs: Literal["zeros", "gaussian"] = Field("gaussian", description="zeros or gaussian N(0, scale²)")
    scale: NonNegFloat = Field(1.0, description="std of gaussian inputs")


class NoneTask(Task):
    kind = "none"
    loss_kind = None
    Options = NoneOptions

    length = property(lambda self: self.opts["length"])
    input_size = property(lambda self: self.opts["input_size"])
    output_size = property(lambda self: 0)
    baseline = property(lambda self: None)

    def solved(self, loss, accuracy=None) -> bool:
        return False

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        shape = (self.length, batch, self.input_size)
        if self.opts["inputs"] == "zeros":
            x = np.zeros(shape)
        else:
            x = self.opts["scale"] * rng.standard_normal(shape)
        return Batch(x, None, np.zeros((self.length, batch), dtype=bool))

    def describe(self) -> str:
        what = ("zero inputs" if self.opts["inputs"] == "zeros"
                else f"Gaussian inputs N(0, {self.opts['scale']:g}²)")
        return (f"none: {self.length} steps of {what} in {self.input_size} channel(s); "
                f"no target (cells at initialisation)")
