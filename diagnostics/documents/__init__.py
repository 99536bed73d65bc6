"""The files a run leaves, by contract: one typed model each, the one way to read and write them.

    curves.json    "diag-curves/1"     Curves (documents/curves.py): numbers that depend only on
                                       the case and seed (byte-stable)
    run.json       "diag-run/1"        Run (documents/run.py): the resolved case, versions,
                                       machine, timings, summary; or the source of curves
                                       that came from no case file
    sweep.json     "diag-sweep/1"      Sweep (documents/sweep.py): a sweep's success rates and
                                       pooled curves
    sweep-run.json "diag-sweep-run/1"  SweepRun: what varies between runs of a sweep

    curves = Curves.read("reports/quickstart")       # a file, or the file in a run folder
    curves.series_for("LSTM", 250, "c")              # attributes, not string keys
    curves.to_json() == Path(...).read_text()        # the same bytes back

Every reader goes through these models and every writer builds them, so a renamed field fails
in the tests, not at a user. A model writes back exactly the keys it read or was given, in the
writers' order (documents/base.py), so the committed baselines keep their bytes. A field renamed
in the files would be a new format version (diag-curves/2) with a reader for version 1.

Unknown keys are refused (BadDocument, one line naming the file and the key), as in case files:
a baseline with a key this version does not know may hold numbers the comparison would silently
skip. `json_schema("curves")` gives a model's JSON Schema (`diag schema --document curves`).
"""
from __future__ import annotations

import os

from .base import (
    CURVES,
    RUN,
    SWEEP,
    SWEEP_RUN,
    DECAY_PATHS,
    BadDocument,
    Document,
    decay_path,
    names_format,
    peek,
    primary_norm,
)
from .curves import (
    Curves,
    Fit,
    Influence,
    Lyapunov,
    PairsDiverged,
    Sensitivity,
    SequencesDiverged,
    Series,
    SummaryRow,
    Training,
    all_diverged,
)
from .run import Run, SweepPoint
from .sweep import Band, PooledCurve, Sweep, SweepCell, SweepRun

MODELS: dict[str, type[Document]] = {"curves": Curves, "run": Run, "sweep": Sweep, "sweep-run": SweepRun}
_BY_FORMAT = {m.FORMAT: m for m in MODELS.values()}

__all__ = ["CURVES", "RUN", "SWEEP", "SWEEP_RUN", "MODELS", "BadDocument", "Document", "Curves", "Fit", "Run", "Sweep",
           "SweepRun", "SweepPoint", "Band", "PooledCurve", "Series", "Influence", "Lyapunov", "Training", "Sensitivity", "SummaryRow", "SweepCell",
           "PairsDiverged", "SequencesDiverged", "all_diverged", "primary_norm", "decay_path", "DECAY_PATHS", "peek", "names_format",
           "read_document", "json_schema"]


def read_document(path_or_dir: str | os.PathLike, fmt: str) -> Document:
    """The document of format `fmt` in a file, or in its usual file inside a folder (the model's
    read); BadDocument with one line naming the file and the problem."""
    return _BY_FORMAT[fmt].read(path_or_dir)


def json_schema(name: str) -> dict:
    """The JSON Schema of a document ("curves", "run", "sweep", "sweep-run"), as files hold it
    (the keys as written: memoryless_loss is "baseline")."""
    model = MODELS[name]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"{model.FILE} ({model.FORMAT})",
            **{k: v for k, v in model.model_json_schema(by_alias=True).items() if k != "title"}}
