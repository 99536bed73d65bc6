"""`none`: inputs only, for studying cells at initialisation (no targets, no training).

    {kind: none, length: T, input_size: d, inputs: zeros | gaussian | ar1, scale: s, rho: ρ}

Gaussian inputs are N(0, scale²) i.i.d. per step and channel; zeros ignore `scale`. `ar1`
inputs have controlled autocorrelation, the setting of the curse of memory (Zucchet & Orvieto
2024; REFERENCES item 22): per channel x<1> ~ N(0, 1) (the stationary start) and

    x<t> = ρ x<t-1> + sqrt(1 - ρ²) ε<t>,   ε<t> ~ N(0, 1) i.i.d.

so every x<t> has unit variance and E[x<t> x<t-j>] = ρ^j, then times `scale`.
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from scipy.signal import lfilter

from ..options import NonNegFloat, PosInt, StrictModel, between
from .base import Batch, Task


class NoneOptions(StrictModel):
    length: PosInt = Field(100, description="steps of one episode")
    input_size: PosInt = Field(1, description="input channels d")
    inputs: Literal["zeros", "gaussian", "ar1"] = Field(
        "gaussian", description="zeros, gaussian N(0, scale²) i.i.d., or ar1 (unit variance, autocorrelation rho, times scale)")
    scale: NonNegFloat = Field(1.0, description="std of gaussian and ar1 inputs")
    rho: Annotated[float, between(-1.0, 1.0)] = Field(
        0.0, description="ar1 only: autocorrelation per step, E[x<t> x<t-1>] = rho")

    @model_validator(mode="after")
    def _rho_needs_ar1(self):
        if self.rho != 0.0 and self.inputs != "ar1":
            raise PydanticCustomError("none", f"rho: applies only to inputs: ar1 (inputs is {self.inputs}), got {self.rho}")
        return self


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """(T, ...) unit-variance AR(1) along axis 0 from its stationary law (see the docstring)."""
    z = rng.standard_normal(shape)
    # lfilter runs y<t> = ρ y<t-1> + c z<t> along time; the first step is z<1> itself (zi)
    c = np.sqrt(1.0 - rho * rho)
    drive = np.concatenate([np.zeros((1,) + shape[1:]), c * z[1:]], axis=0)
    y, _ = lfilter([1.0], [1.0, -rho], drive, axis=0, zi=z[:1])
    return y


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
        elif self.opts["inputs"] == "ar1":
            x = self.opts["scale"] * ar1(rng, shape, self.opts["rho"])
        else:
            x = self.opts["scale"] * rng.standard_normal(shape)
        return Batch(x, None, np.zeros((self.length, batch), dtype=bool))

    def sentence(self) -> str:
        what = {"zeros": "zero inputs", "gaussian": f"Gaussian inputs N(0, {self.opts['scale']:g}²)",
                "ar1": f"AR(1) inputs (autocorrelation ρ = {self.opts['rho']:g}, std {self.opts['scale']:g})"}
        return (f"none: {self.length} steps of {what[self.opts['inputs']]} in {self.input_size} channel(s); "
                f"no target (cells at initialisation)")
