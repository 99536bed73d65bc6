"""run.json ("diag-run/1"): what produced a run's curves and what varies between two runs of it.

Written last into a run folder (a run.json on disk means the folder is complete and this tool's,
publish.py). Everything that may differ between two runs of the same case (timings, machine,
versions) lives here, never in curves.json. Only `format` is required: curves that came from no
case file (a user's own training loop) are described by `source` instead of `case`, and the
report draws them (the summary then comes from the curves, Run.for_curves).
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, StrictBool, StrictInt, StrictStr

from .base import RUN, Document, Model, Num
from .curves import Curves, SummaryRow

# how run.json's `source` begins for curves a LagMonitor recorded in a training loop
# (diagnostics/interop/monitor.py); `diag check` then compares one checkpoint, not all
MONITOR_SOURCE = "LagMonitor"


class RunCell(Model):
    """A cell as built: its kind, every option with its default, the class docstring."""
    OPTIONAL = frozenset({"doc"})
    label: StrictStr
    kind: StrictStr
    options: dict[str, Any]
    doc: Optional[StrictStr] = None     # absent in files from before it


class ProbePlan(Model):
    """What the probe measured (run/plan.py): K lags, the stream, anchors, norms, paths per cell."""
    OPTIONAL = frozenset({"sensitivity"})
    lags: StrictInt
    episode: StrictInt
    stream: StrictInt
    anchors: list[StrictInt]
    tk_anchors: list[StrictInt]
    lyapunov: StrictInt
    lyapunov_steps: StrictInt
    sequences: StrictInt
    norms: list[StrictStr]
    sensitivity: StrictBool = False     # absent in files from before it
    paths: dict[str, list[StrictStr]]


class SweepPoint(Model):
    """Which point of a sweep the run is (its folder is points/<id>/)."""
    index: StrictInt
    id: StrictStr
    values: dict[str, Any]


class Run(Document):
    FORMAT = RUN
    FILE = "run.json"
    # only `format` is needed (curves from no case file); `diag run` writes all but these two
    OPTIONAL = frozenset({"case", "source", "seed", "quick", "case_file", "versions", "timings", "machine", "command",
                          "summary", "cells", "task_description", "task_lag", "files", "probe_plan", "sweep_point"})
    WHEN_MEASURED = frozenset({"source", "sweep_point"})

    format: Literal["diag-run/1"]
    case: Optional[dict[str, Any]] = None     # the resolved case (every default); null: no case file
    source: Optional[StrictStr] = None        # what produced the curves when no case did
    seed: Optional[StrictInt] = None
    quick: StrictBool = False
    case_file: Optional[StrictStr] = None
    versions: dict[str, Optional[StrictStr]] = Field(default_factory=dict)
    timings: dict[str, Num] = Field(default_factory=dict)        # seconds per phase
    machine: dict[str, Any] = Field(default_factory=dict)
    command: Optional[StrictStr] = None
    summary: Optional[list[SummaryRow]] = None     # absent: the report takes it from the curves
    cells: list[RunCell] = Field(default_factory=list)
    task_description: Optional[StrictStr] = None
    task_lag: Optional[Num] = None                 # how far back the input that matters lies
    files: dict[str, Any] = Field(default_factory=dict)   # the files read: SHA-256, bytes; "imported"
    probe_plan: Optional[ProbePlan] = None
    sweep_point: Optional[SweepPoint] = None       # a sweep's point only

    @classmethod
    def for_curves(cls, curves: Curves, source: str, **fields) -> "Run":
        """The run.json of curves that came from no case file (e.g. a training loop of your
        own): `source` says what produced them; the summary is the curves' own."""
        return cls(format=RUN, source=source, summary=curves.summary_rows(), **fields)

    @property
    def monitored(self) -> bool:
        """Were these curves recorded by a LagMonitor during a training loop of the user's?"""
        return self.case is None and (self.source or "").startswith(MONITOR_SOURCE)

    def summary_of(self, curves: Curves) -> list[SummaryRow]:
        """The summary rows: as the run computed them, or from the curves when it gave none."""
        return self.summary if self.summary is not None else curves.summary_rows()

    @property
    def imported(self) -> dict[str, str]:
        """label -> the weight file it was read from, for cells whose weights were imported."""
        return dict(self.files.get("imported") or {})
