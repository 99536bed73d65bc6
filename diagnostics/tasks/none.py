"""`none`: inputs only, for studying cells at initialisation (no targets, no training).

    {kind: none, length: T, input_size: d, inputs: zeros | gaussian, scale: s}

Gaussian inputs are N(0, scale²) i.i.d. per step and channel; zeros ignore `scale`.
"""
from __future__ import annotations

import numpy as np

from .base import Batch, Task, choice, positive_int, real


class NoneTask(Task):
    kind = "none"
    loss_kind = None
    OPTIONS = {"length": 100, "input_size": 1, "inputs": "gaussian", "scale": 1.0}

    def _validate(self, o):
        return {"length": positive_int("length", o["length"]),
                "input_size": positive_int("input_size", o["input_size"]),
                "inputs": choice("inputs", o["inputs"], ("zeros", "gaussian")),
                "scale": real("scale", o["scale"], lo=0.0)}

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
