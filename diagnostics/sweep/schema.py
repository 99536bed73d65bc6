"""The sweep file's schema (pydantic, strict, unknown keys refused with "did you mean"):

    name: latch-sweep                    # the output folder OUT/<name>/
    description: ...
    base: latch.yaml                     # a case file relative to this file, or an inline case
    vary:                                # the full grid over every listed key
      task.p: [5, 10, 20, 50, 100]
      cells[0].recurrent_init.gain: [0.9, 1.0]
      seed: {range: [0, 10]}             # range(0, 10); [start, stop, step] also
    success: {loss_below_baseline: 0.1}  # or task (the task's own goal), accuracy_at_least, within_at_least
    baseline: baselines/latch-sweep.sweep.json   # default; relative to this file
    tolerances: {successes: 1, decades: 0.05}
    report: {title: ...}

Key paths are the case's own structure: dotted keys, `[i]` for a list item. What a value may
be is the case schema's business: every point is validated as a case (sweep/grid.py).
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


class LossBelow(StrictModel):
    loss_below_baseline: Annotated[float, Field(gt=0)] = Field(
        description="success: final loss <= this fraction of the task's memoryless baseline")


class AccuracyAtLeast(StrictModel):
    accuracy_at_least: Fraction = Field(description="success: evaluation accuracy >= this (cross-entropy tasks)")


class WithinAtLeast(StrictModel):
    within_at_least: Fraction = Field(
        description="success: fraction of evaluation sequences within the task's tolerance >= this (adding: 0.04)")


Success = Union[Literal["task"], LossBelow, AccuracyAtLeast, WithinAtLeast]


class SweepReport(StrictModel):
    title: Optional[str] = Field(None, description="page title; default the sweep name")


class SweepFile(StrictModel):
    model_config = ConfigDict(title="diag sweep")
    name: Annotated[str, AfterValidator(safe_name)] = Field(description="output folder name")
    description: str = ""
    base: Union[str, dict[str, Any]] = Field(description="the base case: a file relative to this one, or inline")
    vary: dict[str, Values] = Field(
        min_length=1, description="key path -> list of values (or {range: [start, stop]}); the full grid")
    success: Success = Field("task", union_mode="left_to_right",
                             description="task (its own goal), or one of loss_below_baseline, "
                                         "accuracy_at_least, within_at_least")
    baseline: Optional[str] = Field(None, description="baseline sweep.json relative to this file "
                                                      "(default baselines/<name>.sweep.json)")
    tolerances: SweepTolerances = Field(default_factory=SweepTolerances)
    report: SweepReport = Field(default_factory=SweepReport)

    def sizes(self) -> dict[str, int]:
        """Values per varied key, counted without listing a range's."""
        return {k: len(v) for k, v in self.vary.items()}

    def values(self) -> dict[str, list]:
        """Every varied key's values as a list (a range listed: count the grid first, sizes())."""
        return {k: list(v) for k, v in self.vary.items()}


def success_doc(s) -> dict:
    """The success criterion as sweep.json states it."""
    if s == "task":
        return {"kind": "task", "value": None,
                "description": "the task's own goal (the training record's `solved`)"}
    if isinstance(s, LossBelow):
        v = s.loss_below_baseline
        return {"kind": "loss_below_baseline", "value": v,
                "description": f"final evaluation loss <= {v:g} x the memoryless baseline"}
    if isinstance(s, AccuracyAtLeast):
        v = s.accuracy_at_least
        return {"kind": "accuracy_at_least", "value": v, "description": f"final evaluation accuracy >= {v:g}"}
    v = s.within_at_least
    return {"kind": "within_at_least", "value": v,
            "description": f"fraction of evaluation sequences within the task's tolerance >= {v:g}"}
