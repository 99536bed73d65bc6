"""Tracking, kept out of the training loop: each callback sees a StepInfo and keeps what it
wants. The trainer calls every callback after each gradient evaluation (step 0 = initial
parameters, before any update); a callback decides from its own schedule whether to act.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..cells.base import freeze
from .bptt import Gradients, temporal_components


@dataclass
class StepInfo:
    step: int
    cell: object
    params: dict           # the cell's parameters at this step (training dtype; do not mutate)
    readout: dict
    out: Gradients         # loss, accuracy, grads (before clipping), flow, trace
    grad_norm: float

    @property
    def loss(self) -> float:
        return self.out.loss


def _log10(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(np.asarray(x, dtype=np.float64))  # an exact zero -> -inf, by contract


class History:
    """Loss, accuracy and global gradient norm at every step."""

    def __init__(self):
        self.steps, self.loss, self.grad_norm, self.accuracy = [], [], [], []

    def __call__(self, info: StepInfo) -> None:
        self.steps.append(info.step)
        self.loss.append(info.loss)
        self.grad_norm.append(info.grad_norm)
        self.accuracy.append(info.out.accuracy)


class Checkpoints:
    """Cell parameters (float64, read-only) at the given steps, for the probe."""

    def __init__(self, schedule):
        self.schedule, self.params = set(schedule), {}

    def __call__(self, info: StepInfo) -> None:
        if info.step in self.schedule:
            self.params[info.step] = freeze(info.params)


class GradFlow:
    """(t, log10 ||dL/da<t>||) with t = 1..T, the gradient that reaches each step."""

    def __init__(self, schedule):
        self.schedule, self.curves = set(schedule), {}

    def __call__(self, info: StepInfo) -> None:
        if info.step in self.schedule:
            flow = info.out.flow
            self.curves[info.step] = (np.arange(1, len(flow) + 1), _log10(flow))


class TemporalComponents:
    """(lags, log10 ||component||) of the recurrent-weight gradient; all W blocks of gated cells."""

    def __init__(self, schedule):
        self.schedule, self.curves = set(schedule), {}

    def __call__(self, info: StepInfo) -> None:
        if info.step in self.schedule:
            lags, comps = temporal_components(info.cell, info.params, info.out)
            self.curves[info.step] = (lags, _log10(np.linalg.norm(comps.astype(np.float64), axis=1)))


@dataclass
class CallbackList:
    items: list[Callable[[StepInfo], None]] = field(default_factory=list)

    def __call__(self, info: StepInfo) -> None:
        for cb in self.items:
            cb(info)
