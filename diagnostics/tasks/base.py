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


class Batch(NamedTuple):
    inputs: np.ndarray          # (T, B, d) float64
    targets: np.ndarray | None  # (T, B) int64 (xent) or (T, B, o) float64 (mse); None for `none`
    mask: np.ndarray            # (T, B) bool, the scored steps


# --- option validation: one-line errors that name the option -----------------------------
def positive_int(name: str, value, minimum: int = 1) -> int:
    # bools are ints to Python, but `delay: true` in a case file is a mistake, not 1
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    return int(value)


def real(name: str, value, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    v = float(value)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name}: must be <= {hi:g}, got {value!r}")
    return v


def choice(name: str, value, allowed: tuple) -> object:
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    return bool(value)


class Task:
    """Base of every task. Subclasses declare OPTIONS (name -> default) and `_validate`,
    which returns the normalised options; they are then read as `self.opts[name]`.

    A dict rather than dataclass fields because two tasks have an option called `length`,
    which is also the property every task exposes.
    """

    kind: ClassVar[str] = "task"
    loss_kind: ClassVar[str | None] = None
    OPTIONS: ClassVar[dict] = {}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ValueError(f"{self.kind}: unknown option {unknown[0]!r}; expected one of "
                             f"{', '.join(self.OPTIONS) or '(none)'}")
        merged = {**self.OPTIONS, **options}
        self.opts = MappingProxyType(self._validate(merged))

    def _validate(self, o: dict) -> dict:
        return o

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

    def describe(self) -> str:
        raise NotImplementedError

    def solved(self, loss: float, accuracy: float | None = None) -> bool:
        """Default goal: a tenth of the memoryless baseline's loss."""
        return self.baseline is not None and bool(np.isfinite(loss)) and loss <= 0.1 * self.baseline

    def options(self) -> dict:
        return dict(self.opts)


def one_hot(idx: np.ndarray, size: int) -> np.ndarray:
    """(T, B) ints -> (T, B, size) float64."""
    out = np.zeros(idx.shape + (size,))
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out
