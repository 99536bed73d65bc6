"""Option types, and the one path by which a cell's or a task's options are validated.

A cell kind declares its options once, as the typed fields of its frozen dataclass:

    @dataclass(frozen=True)
    class IndRNN(Cell):
        input_size: PosInt = 1
        hidden: PosInt = 32
        activation: Literal["relu", "tanh", "linear"] = "relu"
        recurrent_max: Finite = 1.0

and a task kind as its `Options` model (a StrictModel, below). The same
declaration validates `make_cell(...)`/`make_task(...)` from Python, builds the case schema's
entry for the kind (`diag validate`, `diag schema`, `diag list`), so there is one rule set.
Constraints the types cannot say (one option against another) go in the cell's `check()` or a
model validator of the task's `Options`, raising "name: problem".

`StrictModel` is the base of every model of a file the user writes (case, sweep, tolerances,
a task's options; a cell's options model is built on it): strict, unknown keys refused,
finite numbers, frozen.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from .errors import DiagnosticsError, error_lines, suggest


class StrictModel(BaseModel):
    """Strict: a YAML string "64" is not an integer and `true` is not 1; unknown keys are
    refused (with "did you mean", errors.py); .nan and .inf are typos here (and an infinite
    tolerance would switch its gate off); frozen: what was read is what runs."""
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


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
Finite = Annotated[float, Field(allow_inf_nan=False)]
PosFloat = Annotated[float, AfterValidator(_positive), Field(json_schema_extra={"exclusiveMinimum": 0})]
NonNegFloat = Annotated[float, AfterValidator(_non_negative), Field(json_schema_extra={"minimum": 0})]


def between(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False):
    """A finite float in [lo, hi] (open ends as asked): `Annotated[float, between(0, 1, hi_open=True)]`."""
    kw: dict[str, float] = {}
    if lo is not None:
        kw["gt" if lo_open else "ge"] = lo
    if hi is not None:
        kw["lt" if hi_open else "le"] = hi
    return Field(allow_inf_nan=False, **kw)


@dataclass(frozen=True)
class Init:
    """How one weight group is initialised: `kind` in gaussian | orthogonal | identity |
    uniform | zeros, scaled by `gain`."""

    kind: str = "gaussian"
    gain: float = 1.0


class InitModel(StrictModel):
    """`{kind, gain}` of a weight group (or just the kind: `recurrent_init: orthogonal`)."""
    kind: Literal[INIT_KINDS] = Field(description="gaussian | orthogonal | identity | uniform | zeros")
    gain: Finite = Field(1.0, description="scale of the initial matrix")


def _init_in(v):
    if isinstance(v, str):
        return {"kind": v}
    if isinstance(v, Init):
        return {"kind": v.kind, "gain": v.gain}
    return v


InitSpec = Annotated[InitModel,
                     BeforeValidator(_init_in, json_schema_input_type=Union[Literal[INIT_KINDS], InitModel]),
                     AfterValidator(lambda m: Init(m.kind, float(m.gain))),
                     PlainSerializer(lambda i: {"kind": i.kind, "gain": i.gain}, return_type=dict)]


# --- validation --------------------------------------------------------------------------
class OptionError(DiagnosticsError):
    """Bad options from Python: one line per problem ("hidden: must be a positive integer, got 0")."""


def _plain(v):
    """numpy scalars as Python numbers (strict validation knows only the latter)."""
    if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    return v


def unknown_option(what: str):
    """How an unknown key of `what` ("lstm cells", "copy tasks") is said, with its options."""
    def say(loc, key, parent):
        if parent is None or len(loc) > 1 and not isinstance(loc[-2], int) and loc[-2] not in ("task",):
            return None
        names = [k for k in parent.model_fields if k != "kind"]
        return (f"unknown option of {what}{suggest(key, names)} "
                f"({what.split()[0]} options: {', '.join(names) or 'none'})")
    return say


def validate(model: type[BaseModel], values: dict[str, Any], what: str | None = None) -> dict[str, Any]:
    """Validated, normalised values of `model`'s fields (every default filled in), or OptionError.
    `what` names the owner ("copy tasks") in the message for an unknown option."""
    try:
        m = model.model_validate({k: _plain(v) for k, v in values.items()})
    except ValidationError as e:
        raise OptionError(error_lines(e, model, unknown_option(what) if what else None)) from None
    return {k: getattr(m, k) for k in type(m).model_fields}


def option(default, doc: str):
    """A cell option's default and its meaning, declared together:

        forget_bias: Finite = option(1.0, "b_f at initialisation: Γ_f = σ(b_f), a memory of ...")

    The meaning reaches `diag list`, `diag schema` and the generated reference pages."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def _default(f: dataclasses.Field):
    doc = f.metadata.get("doc")
    if f.default is not dataclasses.MISSING:
        return Field(f.default, description=doc)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return Field(default_factory=f.default_factory, description=doc)  # type: ignore[misc]
    return Field(..., description=doc)


def option_fields(cls) -> dict[str, tuple]:
    """{name: (annotation, FieldInfo)} of a cell dataclass's options (its init fields).
    An untyped callable factory gets its signature's parameters, typed Any."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        return {f.name: (hints.get(f.name, Any), _default(f)) for f in dataclasses.fields(cls) if f.init}
    out = {}
    for k, p in inspect.signature(cls).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = p.annotation if p.annotation is not p.empty and not isinstance(p.annotation, str) else Any
        out[k] = (ann, Field(None if p.default is p.empty else p.default))
    return out


@functools.lru_cache(maxsize=None)
def options_model(cls) -> type[BaseModel]:
    """The pydantic model of a cell class's options (built once per class)."""
    return create_model(f"{getattr(cls, '__name__', 'cell')}Options", __base__=StrictModel,
                        **option_fields(cls))
