"""The typed case schema (pydantic v2): what a case file may say, with defaults.

A case names a task, the cells to compare, optional training, the probe and the report:

    name: rnn-vs-lstm-copy
    seed: 0
    task: {kind: copy, delay: 100, symbols: 10, alphabet: 8}
    cells: [{kind: rnn, hidden: 64}, {kind: lstm, hidden: 64, forget_bias: 1.0}]
    train: {steps: 500, batch: 32, optimizer: {kind: adam, lr: 0.001}, checkpoints: [0, 100, 500]}
    probe: {lags: 200, sequences: 16, norms: [spectral, frobenius], lyapunov: 8}

`task` and each of `cells` is a union discriminated by `kind`, with one member per registered
kind built from that kind's own declaration of its options (a cell's typed dataclass fields,
a task's `Options` model; diagnostics/options.py). So a kind registered by a user gets the
same validation, JSON Schema entry and `diag list` row as a built-in one, and an editor using
`diag schema` completes only the options of the kind written. Models are strict (a YAML
string "64" is not an integer) and forbid unknown keys (options.StrictModel). Checks that
need the built cells and task (state sizes, paths) are made when the case is resolved
(diagnostics/run/spec.py).
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ..cells.registry import cell_factory, cell_kinds
from ..cells.registry import registry_version as cells_version
from ..errors import suggest
from ..options import NonNegInt, PosFloat, PosInt, StrictModel, between, option_fields
from ..probing.core import NORMS
from ..probing.estimator import KINDS as ESTIMATORS
from ..probing.estimator import ROWS
from ..tasks import registry_version as tasks_version
from ..tasks import task_class, task_kinds
from ..tolerances import Tolerances

# set by the runner (from the task) or by the schema itself, never a cell option in a case
NOT_CELL_OPTIONS = ("input_size",)

# A safe folder name: the report goes to <out>/<name>/, so no separators, no "..", no hidden
# dirs; fullmatch, since `$` would also match before a final newline
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def safe_name(v: str) -> str:
    if not _SAFE_NAME.fullmatch(v) or ".." in v or len(v) > 100:
        raise PydanticCustomError(
            "safe_name", "must be a safe folder name (letters, digits, '_', '-', '.'; "
            "no '/', no '..', not starting with '.'; at most 100 characters)")
    return v


Beta = Annotated[float, between(0.0, 1.0, hi_open=True)]


class Adam(StrictModel):
    kind: Literal["adam"] = "adam"
    lr: PosFloat = Field(1e-3, description="learning rate")
    # beta = 1 would never forget the first gradient: the step is 0/0 at step 1
    betas: Annotated[list[Beta], Field(min_length=2, max_length=2)] = Field(
        [0.9, 0.999], description="moment decay rates [beta1, beta2], each in [0, 1)")
    eps: PosFloat = Field(1e-8, description="added to the root of the second moment")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "adam", "lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps}


class SGD(StrictModel):
    kind: Literal["sgd"]
    lr: PosFloat = Field(1e-2, description="learning rate")
    momentum: Annotated[float, between(0.0, 1.0, hi_open=True)] = Field(0.0, description="heavy-ball momentum in [0, 1)")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "sgd", "lr": self.lr, "momentum": self.momentum}


def _optimizer_kind(v) -> str:
    kind = v.get("kind", "adam") if isinstance(v, dict) else getattr(v, "kind", "adam")
    return kind if kind in ("adam", "sgd") else str(kind)


Optimizer = Annotated[Union[Annotated[Adam, Tag("adam")], Annotated[SGD, Tag("sgd")]],
                      Discriminator(_optimizer_kind)]


class TrainSpec(StrictModel):
    steps: PosInt = Field(description="optimiser steps")
    batch: PosInt = Field(32, description="sequences per step")
    optimizer: Optimizer = Field(default_factory=Adam)
    clip: Optional[PosFloat] = Field(None, description="gradient-norm clipping threshold (Pascanu Alg. 1)")
    checkpoints: Optional[list[NonNegInt]] = Field(
        None, min_length=1, validate_default=True, description="steps at which the probe runs; default [0, steps]")
    dtype: Literal["float64", "float32"] = Field("float64", description="training dtype; probes are float64")

    @field_validator("checkpoints")
    @classmethod
    def _checkpoints(cls, v, info: ValidationInfo):
        steps = info.data.get("steps")
        if steps is None:
            return v
        if v is None:
            return [0, steps]
        if any(c > steps for c in v):
            raise PydanticCustomError("range", "must lie in 0..steps ({steps})", {"steps": steps})
        return sorted(set(v))


class TkMapSpec(StrictModel):
    """The (t, k) map: the median decay curve at a grid of anchors t (0 turns it off)."""
    anchors: Union[NonNegInt, Annotated[list[PosInt], Field(min_length=1)]] = Field(
        6, description="a count of evenly spaced anchors (0: off), or the anchors themselves (steps of the probe stream)",
        union_mode="left_to_right")


class InputsFile(StrictModel):
    """probe.inputs as a mapping: the file and, for an .npz holding several arrays, which one."""
    path: str = Field(description=".npy or .npz (T, B, d), relative to the case file")
    key: Optional[str] = Field(None, description="the array of an .npz that holds several")


class EstimatorSpec(StrictModel):
    """How the probe measures its dense paths: exactly (every row of the chain) or estimated from
    random rows, with a stated interval (diagnostics/probing/estimator.py)."""
    kind: Literal[ESTIMATORS] = Field(
        "exact", description="exact; sketch (estimated from `rows` random rows: Frobenius with a 95% interval, "
                             "spectral as a lower bound); auto (the sketch for a path at least 512 units wide)")
    rows: Annotated[int, Field(ge=2, strict=True)] = Field(ROWS, description="r, random rows per path (at least 2)")
    seed: Optional[NonNegInt] = Field(None, description="of the random rows; default the case seed")


class ProbeSpec(StrictModel):
    lags: Optional[PosInt] = Field(None, description="K, the largest lag; default the task's sequence length")
    sequences: PosInt = Field(16, description="probe sequences (the batch of the probe)")
    norms: list[Literal[NORMS]] = Field(list(NORMS), min_length=1, description="spectral and/or frobenius")
    paths: Optional[list[str]] = Field(
        None, min_length=1, description="Jacobian paths (a, c, c_direct, state, ...); default all of each cell's")
    anchors: Optional[list[PosInt]] = Field(
        None, min_length=1, description="steps t at which curves are read; default the last step of the stream")
    tk_map: TkMapSpec = Field(default_factory=TkMapSpec)
    lyapunov: Optional[NonNegInt] = Field(None, description="exponents m (0: off; default min(8, state size))")
    lyapunov_steps: Optional[PosInt] = Field(
        None, description="steps of the QR method (the first fifth is warm-up); default max(500, stream)")
    inputs: Optional[Union[str, InputsFile]] = Field(
        None, description="your own sequences, .npy or .npz (T, B, d) relative to the case file, or {path, key} "
                          "to pick one array of an .npz: they replace the task's stream for the probe and the "
                          "Lyapunov spectrum")
    tokens: Optional[Union[str, InputsFile]] = Field(
        None, description="token ids for the model cells, .npy or .npz of integers (T, B) relative to the case file, "
                          "or {path, key}: each model reads them through its own input embedding, and the influence "
                          "is measured from those embeddings (instead of probe.inputs)")
    # absent (None) is exact: a case without the key resolves, and so hashes (sweep point ids), as before it
    estimator: Optional[EstimatorSpec] = Field(None, description="how the dense paths are measured; default exact")
    sensitivity: bool = Field(
        False, description="also measure d a<t>/dθ of the recurrent parameters θ, split by lag (curves.json `sensitivity`)")

    @property
    def inputs_file(self) -> tuple[str, Optional[str]] | None:
        """(path, key) of probe.inputs in either form; None without it."""
        return _file(self.inputs)

    @property
    def tokens_file(self) -> tuple[str, Optional[str]] | None:
        """(path, key) of probe.tokens in either form; None without it."""
        return _file(self.tokens)


def _file(v) -> tuple[str, Optional[str]] | None:
    if v is None:
        return None
    return (v, None) if isinstance(v, str) else (v.path, v.key)


class WeightsSpec(StrictModel):
    """A trained model's weights: the cell is read from the file instead of initialised."""
    file: str = Field(description="weight file relative to the case file: .pt/.pth/.bin (torch, weights only), "
                                  ".safetensors (no torch needed) or .npz")
    prefix: Optional[str] = Field(None, description="state_dict prefix of the recurrent module; default the one found")
    layer: Union[NonNegInt, Literal["all"]] = Field(0, description="layer of a stacked module, or all (a stacked cell)",
                                                    union_mode="left_to_right")
    direction: Optional[Literal["forward", "backward"]] = Field(
        None, description="of a bidirectional module (required there); backward runs over the reversed sequence")


_FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def factory_name(v: str) -> str:
    if not _FACTORY.fullmatch(v):
        raise PydanticCustomError("factory", "must be 'package.module:function' (a module to import and a function in it)")
    return v


class HfModel(StrictModel):
    """A Hugging Face model built from its class and config (random weights, seeded by the case)."""
    hf: str = Field(description="class name in transformers, e.g. Mamba2Model")
    config: dict[str, Any] = Field(default_factory=dict, description="the config's keyword arguments")


class HfFolder(StrictModel):
    """A Hugging Face model from a save_pretrained folder: config.json and model.safetensors (read
    without executing code)."""
    hf_folder: str = Field(description="the folder, relative to the case file")


class Factory(StrictModel):
    """A model built by your own Python function: it RUNS YOUR CODE (as a conftest.py does), when
    the case is validated as when it runs; the module is imported with the case file's folder
    first on sys.path."""
    factory: Annotated[str, AfterValidator(factory_name)] = Field(
        description="'package.module:function', called with `kwargs`; returns a torch nn.Module")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the function")


MODEL_FORMS = {"hf": "{hf: CLASS, config: {...}}", "hf_folder": "{hf_folder: FOLDER}",
               "factory": "{factory: 'package.module:function', kwargs: {...}}"}


def _model_form(v) -> str | None:
    """Which form a `model:` mapping is, told by its key; None: none of them."""
    keys = v.keys() if isinstance(v, dict) else type(v).model_fields.keys() if isinstance(v, BaseModel) else ()
    return next((k for k in MODEL_FORMS if k in keys), None)


ModelSpec = Annotated[
    Union[Annotated[HfModel, Tag("hf")], Annotated[HfFolder, Tag("hf_folder")], Annotated[Factory, Tag("factory")]],
    Discriminator(_model_form, custom_error_type="model_form",
                  custom_error_message="must be one of " + ", ".join(MODEL_FORMS.values()))]

MODEL = "model"   # the kind of a cell that names a whole sequence model instead of building one


def model_cell_model() -> type[BaseModel]:
    """`kind: model`: a whole sequence model (a Hugging Face model, or any torch module from a
    factory), measured by its input-to-output influence (diagnostics/interop), not built here."""
    return create_model(
        "cell_model", __base__=StrictModel,
        __doc__="A whole sequence model named instead of built: a Hugging Face class and config, a save_pretrained "
                "folder, or your factory function; its input-to-output influence per lag is measured.",
        kind=(Literal[MODEL], Field(description="cell kind: model")), label=LABEL,
        model=(ModelSpec, Field(description="one of " + "; ".join(MODEL_FORMS.values()))),
        output=(Optional[str], Field(None, description="the output measured when the model returns a tuple or a "
                                                       "ModelOutput; default last_hidden_state, or the first tensor")),
        layers=(bool, Field(False, description="also the output of each layer, block i of the model's layer list "
                                               "(paths l{i}.influence; a Hugging Face model)")),
        memory=(Optional[bool], Field(None, description="also the memory paths l{i}.memory (Mamba, Mamba-2, "
                                                        "RecurrentGemma, xLSTM); default: when the model is one")))


IMPORTABLE = ("rnn", "gru", "lstm")   # kinds a weight file can hold (PyTorch's nn.RNN, nn.GRU, nn.LSTM)


class ReportSpec(StrictModel):
    title: Optional[str] = Field(None, description="page title; default the case name")
    notes: Optional[str] = Field(None, description="free text shown under the title (escaped)")


class CaseBase(StrictModel):
    """The keys of a case besides `task` and `cells` (whose members come from the registries)."""
    model_config = ConfigDict(title="diag case")
    name: Annotated[str, AfterValidator(safe_name)] = Field(description="report folder name")
    description: str = ""
    seed: NonNegInt = 0
    train: Optional[TrainSpec] = None
    probe: ProbeSpec = Field(default_factory=ProbeSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    baseline: Optional[str] = Field(None, description="baseline curves file, relative to the case file")
    tolerances: Tolerances = Field(default_factory=Tolerances)


# --- members built from the registries ----------------------------------------------------
LABEL = (Optional[Annotated[str, Field(min_length=1, max_length=80)]],
         Field(None, description="name in the report; default the kind ('lstm 2' when repeated)"))
STACK = "stack"   # the kind of a stack of cells (cells/stacked.py), written with its layers


def cell_model(kind: str, layer: bool = False) -> type[BaseModel]:
    """One cell entry of a case: `kind`, `label` and the kind's own options; a stack's `layers`
    (stack_model). `layer`: an entry of a stack's layers (no label, no weight file)."""
    if kind == STACK:
        return stack_model()
    if kind == MODEL:
        return model_cell_model()
    factory = cell_factory(kind)
    fields = {k: v for k, v in option_fields(factory).items() if k not in NOT_CELL_OPTIONS}
    doc = (getattr(factory, "__doc__", None) or f"a {kind} cell").strip().splitlines()[0]
    extra = {} if layer else {"label": LABEL}
    if kind in IMPORTABLE and not layer:
        extra["weights"] = (Optional[WeightsSpec], Field(None, description="read this cell from a trained model's "
                                                                          "weight file (hidden from the file)"))
    return create_model(
        f"layer_{kind}" if layer else f"cell_{kind}", __base__=StrictModel, __doc__=doc,
        kind=(Literal[kind], Field(description=f"cell kind: {kind}")), **extra, **fields)


def stack_model() -> type[BaseModel]:
    """`kind: stack`: cells stacked as PyTorch's num_layers, each reading the output of the one
    below (its input_size is set from it, the first layer's from the task)."""
    layers = _union([cell_model(k, layer=True) for k in cell_kinds()])
    return create_model(
        "cell_stack", __base__=StrictModel,
        __doc__="Cells stacked as PyTorch's num_layers: layer l reads layer l-1's output, its input size set from it.",
        kind=(Literal[STACK], Field(description="cell kind: stack")), label=LABEL,
        layers=(list[layers], Field(min_length=1, description="the layers, bottom first: each {kind: KIND, OPTION: "
                                                              "value} as a cell (no label, no weights)")))


def cell_kinds_in_cases() -> list[str]:
    """The kinds a case's `cells` may name: every registered cell kind, stack and model."""
    return cell_kinds() + [STACK, MODEL]


def task_model(kind: str) -> type[BaseModel]:
    cls = task_class(kind)
    doc = (cls.__doc__ or cls.Options.__doc__ or f"the {kind} task").strip().splitlines()[0]
    return create_model(f"task_{kind}", __base__=cls.Options, __doc__=doc,
                        kind=(Literal[kind], Field(description=f"task kind: {kind}")))


def _union(models: list[type[BaseModel]]):
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]


_CACHE: dict = {}


def case_model() -> type[BaseModel]:
    """The Case model for the kinds registered now (rebuilt when a registry changes)."""
    key = (cells_version(), tasks_version())
    if key not in _CACHE:
        _CACHE.clear()
        cells = _union([cell_model(k) for k in cell_kinds_in_cases()])
        task = _union([task_model(k) for k in task_kinds()])
        _CACHE[key] = create_model("Case", __base__=CaseBase,
                                   task=(task, Field(description="kind and that task's options (diag list)")),
                                   cells=(list[cells], Field(min_length=1, description="the cells to compare")))
    return _CACHE[key]


def unknown_key(loc, key, parent) -> str | None:
    """An unknown key in a cell or the task, said with the kind's own options."""
    in_layer = loc[0] == "cells" and len(loc) == 5 and loc[2] == "layers"    # cells[i].layers[k].key
    if parent is None or "kind" not in parent.model_fields or loc[0] not in ("cells", "task") \
            or not (in_layer or len(loc) == (3 if loc[0] == "cells" else 2)):
        return None
    kind = parent.model_fields["kind"].annotation.__args__[0]
    names = [k for k in parent.model_fields if k not in ("kind", "label", "weights")]
    if loc[0] == "cells":
        others = [k for k in cell_kinds_in_cases() if k != kind and key in cell_model(k).model_fields]
        if others:
            return f"is not an option of {kind} cells ({kind} options: {', '.join(names)})"
        return f"unknown key{suggest(key, names)}"
    return f"unknown option of {kind} tasks{suggest(key, names)} ({kind} options: {', '.join(names) or 'none'})"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of case files: `cells[]` and `task` are oneOf over the kinds,
    discriminated by `kind`, so an editor offers only the chosen kind's options."""
    return case_model().model_json_schema()
