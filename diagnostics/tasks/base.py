"""What every task is: a seeded batch generator with a loss kind, a baseline and a goal.

    batch = task.sample(rng, B)   # Batch(inputs (T, B, d), targets, mask (T, B) bool)

Targets are class indices (T, B) int64 for cross-entropy tasks and values (T, B, o) float64
for squared-error tasks; only the steps where `mask` is True are scored. The baseline is the
loss of the best predictor that sees the step index and the current input but has no memory
of the input that the answer depends on, so a trained network beats it only by remembering.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar, NamedTuple

import numpy as np
from pydantic import BaseModel

from ..options import StrictModel, validate


class Batch(NamedTuple):
    inputs: np.ndarray          # (T, B, d) float64
    targets: np.ndarray | None  # (T, B) int64 (xent) or (T, B, o) float64 (mse); None for `none`
    mask: np.ndarray            # (T, B) bool, the scored steps


class NoOptions(StrictModel):
    """No options."""


class Task:
    """Base of every task. A subclass declares its options once, as its `Options` model (a
    options.StrictModel, see diagnostics/options.py); that declaration
    validates `make_task(...)` and builds the task's entry in the case schema. The validated
    options are read as `self.opts[name]`.

    A model rather than dataclass fields because two tasks have an option called `length`,
    which is also the property every task exposes.
    """

    kind: ClassVar[str] = "task"
    loss_kind: ClassVar[str | None] = None
    Options: ClassVar[type[BaseModel]] = NoOptions
    # a squared-error task may state the per-sequence tolerance of its published success
    # measure; the trainer then records the fraction of evaluation sequences within it
    within_tolerance: ClassVar[float | None] = None
    # a cross-entropy task that scores several answers per sequence may ask for the published
    # success measure of selective copying and MQAR instead: `within` is then the fraction of
    # evaluation sequences whose every scored answer is right
    sequence_exact: ClassVar[bool] = False

    def __init__(self, **options):
        self.opts = MappingProxyType(validate(self.Options, options, what=f"{self.kind} tasks"))

    def __repr__(self) -> str:
        return f"make_task({self.kind!r}, {', '.join(f'{k}={v!r}' for k, v in self.opts.items())})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and dict(other.opts) == dict(self.opts)

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.opts.items())))

    # sizes every task states; subclasses override
    @property
    def length(self) -> int:
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    @property
    def baseline(self) -> float | None:
        raise NotImplementedError

    @property
    def lag(self) -> int | None:
        """Steps between the input that matters and the step that is scored (for reports)."""
        return None

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        raise NotImplementedError

    def sentence(self) -> str:
        """The task in one sentence, for a person (run.json, the report, `diag list`); a
        cell's describe() is its options as data."""
        raise NotImplementedError

    def solved(self, loss: float, accuracy: float | None = None) -> bool:
        """Default goal: a tenth of the memoryless loss."""
        return self.baseline is not None and bool(np.isfinite(loss)) and loss <= 0.1 * self.baseline

    def options(self) -> dict:
        return dict(self.opts)


def one_hot(idx: np.ndarray, size: int) -> np.ndarray:
    """(T, B) ints -> (T, B, size) float64."""
    out = np.zeros(idx.shape + (size,))
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out
