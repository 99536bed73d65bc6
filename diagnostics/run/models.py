"""Model cells: a case's `kind: model` entry, a whole sequence model named instead of built.

    cell = build_model_cell(spec, base_dir, seed=[case seed, 1, i])   # ModelCell, or DiagnosticsError
    x = model_inputs(cell, xs)                     # (T, B, d) probe inputs -> the model's own layout
    x = token_inputs(cell, ids)                    # (T, B) ids -> embeddings through its own embedding

The model is loaded by diagnostics.interop.models.load_model (a Hugging Face class and config, its
random weights from the case seed; a save_pretrained folder; or the user's factory: that one
RUNS THE USER'S CODE, with the case file's folder first on sys.path, as pytest imports a
conftest.py, under a torch seed from the case) and measured by its
input-to-output influence (interop.influence.lag_influence) and, for the selective
recurrences it knows, its memory paths (interop.memory.memory_paths). torch and transformers
are imported only when a model cell is built.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DiagnosticsError
from ..interop.memory import supported_mixers
from ..interop.models import ModelError, is_hf, layer_list, load_model
from ..optional import OptionalMissing, import_torch, install_hint


@dataclass(frozen=True, eq=False)
class ModelCell:
    """A built model cell: the module as loaded (never modified; the measurements take float64
    copies) and how it is fed. It has no state of diag's, so no paths, state size or decay path
    of the probe's: its curves are the influence items (and l{i}.memory series) of curves.json."""
    model: Any                  # the torch nn.Module
    kind: str                   # its class name, the kind the report names
    batch_first: bool           # takes (B, T, d), else (T, B, d) (interop.models.Call's rule)
    width: int | None           # embedding width it reads, when it says (None: not checked here)
    vocab: int | None           # size of its input embedding, when it has one
    form: dict | None = None    # the case's `model:` as given (hf + config, hf_folder, or factory + kwargs)
    output: str | None = None
    layers: bool = False
    memory: bool | None = None
    paths: tuple = ()
    state_size: None = None
    decay_path: None = None

    @property
    def input_size(self) -> int | None:
        return self.width

    @property
    def source(self) -> str:
        """Where the model came from, in words (the report's and run.json's)."""
        f = self.form or {}
        if "hf_folder" in f:
            return f"save_pretrained folder {f['hf_folder']}"
        if "factory" in f:
            return f"your factory {f['factory']} (your code, run)"
        return f"transformers.{f.get('hf')} from its config (random weights, seeded by the case)"

    @property
    def doc(self) -> str:
        """The report's words for the cell (run.json `doc`)."""
        return (f"A {self.kind}, {self.source}: measured as a whole, by the influence of its output on its input "
                "k steps back, ‖∂y<t>/∂x<t-k>‖ (lags from 0), not by a state Jacobian of diag's.")

    def describe(self) -> dict:
        """run.json's cell options: what the case said, the width and vocabulary read from the model."""
        return {"kind": self.kind, "model": self.form, "source": self.source, "width": self.width,
                "vocab": self.vocab, "batch_first": self.batch_first, "output": self.output,
                "layers": self.layers, "memory": self.memory,
                "parameters": int(sum(p.numel() for p in self.model.parameters()))}


def is_model_cell(cell) -> bool:
    return isinstance(cell, ModelCell)


def has_memory(model) -> bool:
    """Does the model hold a selective recurrence whose memory paths interop.memory reads?"""
    try:
        supported_mixers(model)
    except ModelError:
        return False
    return True


def build_model_cell(spec, base_dir: Path, seed) -> ModelCell:
    """The `kind: model` entry `spec` (run/schema.py) loaded: random weights (a class and a
    config; whatever a factory draws) from `seed`, without touching the caller's torch
    generator. DiagnosticsError (one line, its key after `model.`) when it cannot be used."""
    form = spec.model.model_dump()
    if "factory" not in form and importlib.util.find_spec("torch") is None:
        # a Hugging Face class or folder: the [hf] extra brings both (not [torch], then [hf])
        raise OptionalMissing(f"a Hugging Face model cell needs torch and transformers: {install_hint('transformers')}")
    torch = import_torch("a model cell")
    draw = int(np.random.SeedSequence(seed).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw)
        model = load_model({**form, "seed": draw} if "hf" in form else form, base=base_dir)
    hf = is_hf(model)
    if spec.layers and not (hf and layer_list(model)):   # as lag_influence would refuse it, before it runs
        raise DiagnosticsError(f"layers: needs a Hugging Face model with a list of layers; "
                               f"{type(model).__name__} is not one")
    if spec.memory and not has_memory(model):
        try:
            supported_mixers(model)
        except ModelError as e:          # its one line, naming the supported classes
            raise DiagnosticsError(f"memory: {e.lines[0].removeprefix('memory_paths: ')}") from None
    emb = model.get_input_embeddings() if hf else None
    width = getattr(emb, "embedding_dim", None)
    if width is None and isinstance(getattr(model, "input_size", None), int):
        width = model.input_size          # an nn.RNN, GRU or LSTM
    return ModelCell(model=model, kind=type(model).__name__, batch_first=hf or bool(getattr(model, "batch_first", False)),
                     width=width, vocab=getattr(emb, "num_embeddings", None), form=form, output=spec.output,
                     layers=spec.layers, memory=has_memory(model) if spec.memory is None else spec.memory)


def model_inputs(cell: ModelCell, xs: np.ndarray):
    """The probe's (T, B, d) float64 inputs as a float64 tensor in the model's own layout."""
    torch = import_torch("a model cell")
    x = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float64))
    return x.transpose(0, 1).contiguous() if cell.batch_first else x


def token_inputs(cell: ModelCell, ids: np.ndarray, model=None):
    """(T, B) token ids through the model's own input embedding (of `model`, a float64 copy, when
    given): float64 embeddings in its layout, what the influence is measured from."""
    torch = import_torch("a model cell")
    m = model if model is not None else cell.model
    emb = m.get_input_embeddings()
    with torch.no_grad():
        e = emb(torch.from_numpy(np.ascontiguousarray(ids.T, dtype=np.int64))).to(torch.float64)   # (B, T, d)
    return e if cell.batch_first else e.transpose(0, 1).contiguous()
