"""The sweep file's schema (pydantic, strict, unknown keys refused with "did you mean"):

    name: latch-sweep                    # the output folder OUT/<name>/
    description: ...
    base: latch.yaml                     # a case file relative to this file, or an inline case
    vary:                                # the full grid over every listed key
      task.p: [5, 10, 20, 50, 100]
      cells[0].recurrent_init.gain: [0.9, 1.0]
      seed: {range: [0, 10]}             # range(0, 10); [start, stop, step] also
    success: {kind: loss_below_baseline, fraction: 0.1}   # or {kind: task}, accuracy_at_least, within_at_least
    baseline: baselines/latch-sweep.sweep.json   # default; relative to this file
    tolerances: {successes: 1, decades: 0.05}
    report: {title: ...}

Key paths are the case's own structure: dotted keys, `[i]` for a list item. What a value may
be is the case schema's business: every point is validated as a case (sweep/grid.py).

`success` is tagged by `kind`, as cells and tasks are:

    {kind: task}                                   the task's own goal (the default)
    {kind: loss_below_baseline, fraction: 0.1}     final loss <= 0.1 x the memoryless loss
    {kind: accuracy_at_least, value: 1.0}          cross-entropy tasks
    {kind: within_at_least, value: 0.9}            fraction of sequences within the task's tolerance

The spelling before kinds (`task`, `{loss_below_baseline: 0.1}`, `{accuracy_at_least: 1.0}`,
`{within_at_least: 0.9}`) is still read, with a warning naming the new one (old_success).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from ..options import StrictModel, between
from ..run.schema import safe_name
from .tolerances import SweepTolerances

Fraction = Annotated[float, between(0.0, 1.0, lo_open=True)]


def vary_values(v: Any) -> list | range:
    """A list of values, or `{range: [start, stop]}` / `[start, stop, step]` as Python's range
    (stop excluded), kept lazy: the grid is counted (a range's length is arithmetic) before
    any point is built, so range: [0, 10**12] is refused by --max-points, not by memory."""
    if isinstance(v, list):
        if not v:
            raise PydanticCustomError("values", "must have at least 1 item")
        return v
    r = v.get("range") if isinstance(v, dict) and set(v) == {"range"} else None
    if r is None:
        raise PydanticCustomError("values", "must be a list of values or {range: [start, stop]} ([start, stop, step])")
    if not isinstance(r, list) or not 2 <= len(r) <= 3:
        raise PydanticCustomError("range", "range: must be [start, stop] or [start, stop, step], got {r}", {"r": r})
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in r):
        raise PydanticCustomError("range", "range: start, stop and step must be integers, got {r}", {"r": r})
    if len(r) == 3 and r[2] == 0:
        raise PydanticCustomError("range", "range: step must not be 0, got {r}", {"r": r})
    if not range(*r):
        raise PydanticCustomError("range", "range: must give at least one value, got {r} (stop is excluded)", {"r": r})
    return range(*r)


Values = Annotated[Any, PlainValidator(vary_values)]


class TaskGoal(StrictModel):
    kind: Literal["task"] = Field("task", description="success: the task's own goal (the training record's `solved`)")

    def document(self) -> dict:
        """The criterion as sweep.json states it."""
        return {"kind": "task", "value": None, "description": "the task's own goal (the training record's `solved`)"}

    def holds(self, tr) -> bool:
        """Does a training record (curves.json's `training` item, documents.Training) meet it?"""
        return bool(tr.solved)

    def problem(self, task) -> str | None:
        """Why it cannot be measured on `task`, or None."""
        return None


class LossBelowBaseline(StrictModel):
    kind: Literal["loss_below_baseline"]
    fraction: Annotated[float, Field(gt=0)] = Field(
        description="success: final loss <= this fraction of the task's memoryless loss")

    def document(self) -> dict:
        return {"kind": self.kind, "value": self.fraction,
                "description": f"final evaluation loss <= {self.fraction:g} x the memoryless loss"}

    def holds(self, tr) -> bool:
        loss, memoryless = tr.final_loss, tr.memoryless_loss
        return loss is not None and memoryless is not None and loss <= self.fraction * memoryless

    def problem(self, task) -> str | None:
        return None


class AccuracyAtLeast(StrictModel):
    kind: Literal["accuracy_at_least"]
    value: Fraction = Field(description="success: evaluation accuracy >= this (cross-entropy tasks)")

    def document(self) -> dict:
        return {"kind": self.kind, "value": self.value, "description": f"final evaluation accuracy >= {self.value:g}"}

    def holds(self, tr) -> bool:
        return tr.final_accuracy is not None and tr.final_accuracy >= self.value

    def problem(self, task) -> str | None:
        if task.loss_kind != "xent":
            return (f"accuracy_at_least needs an accuracy, and the {task.kind} task has none (squared error); "
                    "use loss_below_baseline or within_at_least")
        return None


class WithinAtLeast(StrictModel):
    kind: Literal["within_at_least"]
    value: Fraction = Field(
        description="success: fraction of evaluation sequences within the task's tolerance >= this (adding: 0.04; "
                    "selective_copy, mqar: every answer right)")

    def document(self) -> dict:
        return {"kind": self.kind, "value": self.value,
                "description": f"fraction of evaluation sequences within the task's tolerance >= {self.value:g}"}

    def holds(self, tr) -> bool:
        return tr.final_within is not None and tr.final_within >= self.value

    def problem(self, task) -> str | None:
        if getattr(task, "within_tolerance", None) is None and not getattr(task, "sequence_exact", False):
            return (f"within_at_least needs a per-sequence tolerance, and the {task.kind} task states none "
                    "(the adding task does: 0.04; selective_copy and mqar count sequences answered exactly)")
        return None


Success = Annotated[Union[TaskGoal, LossBelowBaseline, AccuracyAtLeast, WithinAtLeast], Field(discriminator="kind")]
# the spelling before kinds: the one key -> (kind, the value's field)
_OLD = {"loss_below_baseline": "fraction", "accuracy_at_least": "value", "within_at_least": "value"}


def _flow(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"


def old_success(v: Any) -> tuple[dict, str, str] | None:
    """A success criterion in the spelling before kinds -> (the new spelling, the old key,
    the warning naming the new spelling); None for any other value."""
    if v == "task":
        new = {"kind": "task"}
        return new, "task", f"success: task is the old spelling; write success: {_flow(new)}"
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in _OLD:
        (key, x), = v.items()
        new = {"kind": key, _OLD[key]: x}
        return new, key, f"success: {_flow(v)} is the old spelling; write success: {_flow(new)}"
    return None


class SweepReport(StrictModel):
    title: Optional[str] = Field(None, description="page title; default the sweep name")


class SweepFile(StrictModel):
    model_config = ConfigDict(title="diag sweep")
    name: Annotated[str, AfterValidator(safe_name)] = Field(description="output folder name")
    description: str = ""
    base: Union[str, dict[str, Any]] = Field(description="the base case: a file relative to this one, or inline")
    vary: dict[str, Values] = Field(
        min_length=1, description="key path -> list of values (or {range: [start, stop]}); the full grid")
    success: Success = Field(default_factory=TaskGoal,
                             description="{kind: task} (its own goal), or {kind: loss_below_baseline, fraction}, "
                                         "{kind: accuracy_at_least, value}, {kind: within_at_least, value}")
    baseline: Optional[str] = Field(None, description="baseline sweep.json relative to this file "
                                                      "(default baselines/<name>.sweep.json)")
    tolerances: SweepTolerances = Field(default_factory=SweepTolerances)
    report: SweepReport = Field(default_factory=SweepReport)

    def sizes(self) -> dict[str, int]:
        """Values per varied key, counted without listing a range's (and without len(), which
        overflows past 2**63 - 1: {range: [0, 10**20]} is counted, then refused, in one line)."""
        return {k: _count(v) for k, v in self.vary.items()}

    def values(self) -> dict[str, list]:
        """Every varied key's values as a list (a range listed: count the grid first, sizes())."""
        return {k: list(v) for k, v in self.vary.items()}


def _count(values) -> int:
    if isinstance(values, range):
        r = values
        return max(0, (r.stop - r.start + r.step - (1 if r.step > 0 else -1)) // r.step)
    return len(values)
