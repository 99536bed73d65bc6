"""The typed case schema (pydantic v2): what a case file may say, with defaults.

A case names a task, the cells to compare, optional training, the probe and the report:

    name: rnn-vs-lstm-copy
    seed: 0
    task: {kind: copy, delay: 100, symbols: 10, alphabet: 8}
    cells: [{kind: rnn, hidden: 64}, {kind: lstm, hidden: 64, forget_bias: 1.0}]
    train: {steps: 500, batch: 32, optimizer: {kind: adam, lr: 0.001}, checkpoints: [0, 100, 500]}
    probe: {lags: 200, sequences: 16, norms: [spectral, frobenius], lyapunov: 8}

Models are strict (a YAML string "64" is not an integer) and forbid unknown keys. This module
checks shapes and types only; checks that need the cells and tasks themselves (an option valid
for one cell kind only, a task's own options, unique labels) live in `caseload`, which also
turns pydantic's errors into one line per problem.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, WrapValidator, model_validator)
from pydantic_core import PydanticCustomError

from .regression.tolerances import Tolerances

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)  # .nan / .inf are typos here
NORMS = ("spectral", "frobenius")
CELL_KINDS = ("rnn", "gru", "lstm")       # built-in kinds, for the JSON Schema; registered ones also pass
TASK_KINDS = ("copy", "adding", "temporal_order", "latch", "tariff_shock", "none")
INIT_KINDS = ("gaussian", "orthogonal", "identity", "uniform", "zeros")


def _positive(v):
    if v <= 0:
        kind = "integer" if isinstance(v, int) else "number"
        raise PydanticCustomError("positive", f"must be a positive {kind}")
    return v


def _non_negative(v):
    if v < 0:
        kind = "integer" if isinstance(v, int) else "number"
        raise PydanticCustomError("non_negative", f"must be a non-negative {kind}")
    return v


PosInt = Annotated[int, AfterValidator(_positive), Field(json_schema_extra={"minimum": 1})]
NonNegInt = Annotated[int, AfterValidator(_non_negative), Field(json_schema_extra={"minimum": 0})]
PosFloat = Annotated[float, AfterValidator(_positive), Field(json_schema_extra={"exclusiveMinimum": 0})]

# A safe folder name: the report goes to <out>/<name>/, so no separators, no "..", no hidden dirs.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _safe_name(v: str) -> str:
    if not _SAFE_NAME.match(v) or ".." in v or len(v) > 100:
        raise PydanticCustomError(
            "safe_name", "must be a safe folder name (letters, digits, '_', '-', '.'; "
            "no '/', no '..', not starting with '.'; at most 100 characters)")
    return v


def _one_error(message: str):
    """A union reports one error per member; say once what is expected instead."""
    def wrap(v, handler):
        try:
            return handler(v)
        except ValidationError:
            raise PydanticCustomError("expected", message) from None
    return WrapValidator(wrap)


def _init_shorthand(v):
    # `recurrent_init: orthogonal` is short for `recurrent_init: {kind: orthogonal}`
    return {"kind": v} if isinstance(v, str) else v


class InitSpec(BaseModel):
    """How one weight group is initialised."""
    model_config = STRICT
    kind: Literal[INIT_KINDS] = Field(description="gaussian | orthogonal | identity | uniform | zeros")
    gain: float = Field(1.0, description="scale of the initial matrix")


InitField = Annotated[Optional[InitSpec], BeforeValidator(_init_shorthand)]


class TaskSpec(BaseModel):
    """`kind` plus that task's own options (`diag list` shows them); checked against the task."""
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    kind: str = Field(description="one of " + ", ".join(TASK_KINDS),
                      json_schema_extra={"enum": list(TASK_KINDS)})

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CellSpec(BaseModel):
    """One cell. Options left out take the cell's defaults; an option of another kind is an error."""
    model_config = STRICT
    kind: str = Field(description="one of " + ", ".join(CELL_KINDS),
                      json_schema_extra={"enum": list(CELL_KINDS)})
    label: Optional[str] = Field(None, min_length=1, max_length=80,
                                 description="name in the report; default the kind ('lstm 2' when repeated)")
    hidden: PosInt = Field(32, description="hidden size n")
    activation: Optional[Literal["tanh", "relu", "linear"]] = Field(None, description="rnn only")
    reset_gate: Optional[bool] = Field(None, description="gru only: learned reset gate Γ_r")
    forget_gate: Optional[bool] = Field(None, description="lstm only: false gives the 1997 constant error carousel")
    output_tanh: Optional[bool] = Field(None, description="lstm only: a = Γ_o tanh(c) (true) or Γ_o c")
    forget_bias: Optional[float] = Field(None, description="lstm only: initial forget-gate bias b_f")
    chrono: Optional[PosFloat] = Field(None, description="lstm only: chrono init with this T_max")
    recurrent_init: InitField = Field(None, description="{kind, gain} of the recurrent weights")
    input_init: InitField = Field(None, description="{kind, gain} of the input weights")
    bias: Optional[float] = Field(None, description="initial bias of the candidate / activation")

    SPECIAL: ClassVar[tuple[str, ...]] = ("kind", "label", "hidden")

    def options(self) -> dict[str, Any]:
        """Options explicitly set in the case, as make_cell keyword arguments."""
        out = {}
        for k in type(self).model_fields:
            v = getattr(self, k)
            if k in self.SPECIAL or v is None:
                continue
            out[k] = v.model_dump() if isinstance(v, BaseModel) else v
        return out


class OptimizerSpec(BaseModel):
    model_config = STRICT
    kind: Literal["adam", "sgd"] = "adam"
    lr: PosFloat = Field(1e-3, description="learning rate")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="sgd only (default 0)")
    betas: Optional[list[float]] = Field(None, min_length=2, max_length=2,
                                         description="adam only (default [0.9, 0.999])")

    eps: Optional[PosFloat] = Field(None, description="adam only (default 1e-8)")

    def as_dict(self) -> dict[str, Any]:
        """The trainer's optimizer dict (adam takes beta1/beta2/eps, sgd momentum)."""
        out: dict[str, Any] = {"kind": self.kind, "lr": self.lr}
        if self.momentum is not None:
            out["momentum"] = self.momentum
        if self.betas is not None:
            out["beta1"], out["beta2"] = self.betas
        if self.eps is not None:
            out["eps"] = self.eps
        return out


class TrainSpec(BaseModel):
    model_config = STRICT
    steps: PosInt = Field(description="optimiser steps")
    batch: PosInt = Field(32, description="sequences per step")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    clip: Optional[PosFloat] = Field(None, description="gradient-norm clipping threshold (Pascanu Alg. 1)")
    checkpoints: Optional[list[NonNegInt]] = Field(
        None, description="steps at which the probe runs; default [0, steps]")
    dtype: Literal["float64", "float32"] = Field("float64", description="training dtype; probes are float64")

    @model_validator(mode="after")
    def _checkpoints(self):
        # range errors are reported by checks.py (with the rest of the file's problems)
        if self.checkpoints is None:
            self.checkpoints = [0, self.steps]
        self.checkpoints = sorted(set(self.checkpoints))
        return self


class TkMapSpec(BaseModel):
    """The (t, k) map: the median decay curve at a grid of anchors t (0 turns it off)."""
    model_config = STRICT
    anchors: Annotated[int | list[PosInt], _one_error("must be a count or a list of positive integers")] = Field(
        6, description="a count of evenly spaced anchors, or the anchors themselves (steps of the probe stream)")

    @model_validator(mode="after")
    def _check(self):
        if isinstance(self.anchors, int) and self.anchors < 0:
            raise PydanticCustomError("tk", "anchors: must be a count >= 0 or a list of steps")
        return self


class ProbeSpec(BaseModel):
    model_config = STRICT
    lags: Optional[PosInt] = Field(None, description="K, the largest lag; default the task's sequence length")
    sequences: PosInt = Field(16, description="probe sequences (the batch of the probe)")
    norms: list[Literal[NORMS]] = Field(list(NORMS), min_length=1, description="spectral and/or frobenius")
    paths: Optional[list[Literal["a", "c", "c_direct", "state"]]] = Field(
        None, min_length=1, description="Jacobian paths; default all of each cell's")
    anchors: Optional[list[PosInt]] = Field(
        None, min_length=1, description="steps t at which curves are read; default the last step of the stream")
    tk_map: TkMapSpec = Field(default_factory=TkMapSpec)
    lyapunov: Optional[NonNegInt] = Field(None, description="exponents m (0: off; default min(8, state size))")
    lyapunov_steps: Optional[PosInt] = Field(
        None, description="steps of the QR method (the first fifth is warm-up); default max(500, stream)")


class ReportSpec(BaseModel):
    model_config = STRICT
    title: Optional[str] = Field(None, description="page title; default the case name")
    notes: Optional[str] = Field(None, description="free text shown under the title (escaped)")


class Case(BaseModel):
    """A case file, resolved. `diag schema` prints this model's JSON Schema."""
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, title="diag case")
    name: Annotated[str, AfterValidator(_safe_name)] = Field(description="report folder name")
    description: str = ""
    seed: NonNegInt = 0
    task: TaskSpec
    cells: list[CellSpec] = Field(min_length=1)
    train: Optional[TrainSpec] = None
    probe: ProbeSpec = Field(default_factory=ProbeSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    baseline: Optional[str] = Field(None, description="baseline curves file, relative to the case file")
    tolerances: Tolerances = Field(default_factory=Tolerances)

    def resolved(self) -> dict[str, Any]:
        """The case as plain data with every default filled in (for run.json)."""
        d = self.model_dump(mode="json", exclude_none=True)
        d["task"] = {"kind": self.task.kind, **self.task.options()}
        return d


def json_schema() -> dict[str, Any]:
    """Case.model_json_schema() plus, per cell and task kind, which options that kind takes
    (JSON Schema if/then), so an editor completes and checks `forget_bias` only on an lstm."""
    import json

    from .checks import cell_kinds, cell_option_defaults, task_kinds, task_option_defaults
    s = Case.model_json_schema()
    defs = s["$defs"]

    def per_kind(kinds, options, common):
        rules = []
        for k in kinds:
            allowed = {name: {} for name in (*common, *options(k))}
            for name, default in options(k).items():
                try:  # defaults an editor can show; skip what JSON cannot hold
                    json.dumps(default)
                    allowed[name] = {"default": default}
                except TypeError:
                    pass
            rules.append({"if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                          "then": {"properties": allowed, "additionalProperties": False}})
        return rules

    defs["CellSpec"]["properties"]["kind"]["enum"] = cell_kinds()
    defs["CellSpec"]["allOf"] = per_kind(cell_kinds(), cell_option_defaults, CellSpec.SPECIAL)
    defs["TaskSpec"]["properties"]["kind"]["enum"] = task_kinds()
    defs["TaskSpec"]["allOf"] = per_kind(task_kinds(), task_option_defaults, ("kind",))
    return s
