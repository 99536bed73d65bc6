"""The folder a LagMonitor keeps (diagnostics/interop/torch.py): checkpoints appended, curves.json
and run.json rewritten whole at each one. No torch here: what is recorded, not how it is probed.

    folder = MonitorFolder(out, Identity(...))   # refuses someone else's folder (one line)
    folder.add(step, *Checkpoint(series, bounds), loss=loss, seconds=s)   # the folder swapped in whole

The folder follows publish.py's rule: it replaces only an absent or empty folder or one of this
tool's runs, and each checkpoint swaps in a whole folder (a run killed at any moment leaves the
previous checkpoint's folder, readable). A folder a LagMonitor wrote for the same model (its kind
and every parameter's shape, run.json `cells[0].options`) is reopened: its checkpoints are kept
and new ones appended, so a resumed training continues its curves; a checkpoint probed again (a
training resumed from an earlier step) replaces the earlier one. The same model monitored with
other probe settings (lags, anchors, probe batch, estimator) would mix two kinds of curve in one
file and is refused in one line.

Loss: the mean of the losses given since the previous checkpoint (this step included) goes
beside each checkpoint's curves as a `training` item (step, loss: those means; solved null: no
task says what solving is).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..documents import BadDocument, Curves, Run, primary_norm
from ..documents.run import ProbePlan, RunCell
from ..errors import DiagnosticsError
from ..probing.series import assemble
from ..publish import claim, replacing
from ..version import __version__


class MonitorError(DiagnosticsError):
    """A LagMonitor that cannot be built or used as asked (one line)."""


@dataclass(frozen=True)
class Identity:
    """What a monitored run is of: the cell label and kind, the module's class and parameter
    shapes (what must match to append), and the probe settings (what must match as well)."""
    label: str
    kind: str
    options: dict        # {"module": class name, "shapes": {name: [sizes]}, ...}: run.json cells[0].options
    plan: dict           # ProbePlan fields
    estimator: dict      # {"estimator": ..., "rows": ..., "seed": ...}
    source: str          # run.json `source`
    versions: dict


class Checkpoint(NamedTuple):
    """What one checkpoint adds: curves.json series and bounds, and for a model measured as a
    whole (no recurrent layer) its influence items and whether it computes in float32 inside."""
    series: list
    bounds: list
    influence: list | tuple = ()
    float32_inside: bool = False


class MonitorFolder:
    """The monitored run's documents in memory and on disk (see the module docstring)."""

    def __init__(self, out, identity: Identity):
        self.out, self.id = Path(out), identity
        claim(self.out)   # ForeignFolder, one line, before the training starts
        self.series: list = []
        self.bounds: list = []
        self.influence: list = []
        self.float32_inside = False
        self.checkpoints: list[int] = []
        self.loss: dict[int, float | None] = {}
        self.seconds = 0.0
        self.appending = self._reopen()

    # --- reopening ------------------------------------------------------------------------------
    def _reopen(self) -> bool:
        """Take up a monitored run of the same model in `out` (True), or start afresh (False)."""
        try:
            run = Run.read(self.out)
            curves = Curves.read(self.out)
        except BadDocument:   # absent, empty, or not a whole run: replaced at the first checkpoint
            return False
        if not (run.monitored and run.cells and run.cells[0].kind == self.id.kind
                and run.cells[0].options.get("shapes") == self.id.options["shapes"]
                and run.cells[0].options.get("module") == self.id.options["module"]):
            return False      # this tool's run of something else: replaced, as publish.py allows
        old = run.probe_plan.model_dump(by_alias=True) if run.probe_plan is not None else None
        settings = dict(run.cells[0].options.get("probe") or {})
        if old != self.id.plan or settings != self.id.estimator:
            raise MonitorError(
                f"LagMonitor: out: {self.out} holds a monitored run of this model probed with "
                f"{_settings(old, settings)}, not {_settings(self.id.plan, self.id.estimator)}; "
                "choose another out, or the same settings to append")
        self.series = [s.model_dump(by_alias=True, exclude_unset=True) for s in curves.series]
        self.bounds = [b.model_dump(by_alias=True, exclude_unset=True) for b in curves.bounds]
        self.influence = [x.model_dump(by_alias=True, exclude_unset=True) for x in curves.influence]
        self.float32_inside = self.id.label in curves.float32_inside
        self.checkpoints = curves.checkpoints
        for t in curves.training[:1]:
            self.loss = dict(zip(t.checkpoints, t.loss_at_checkpoints))
        self.seconds = float(run.timings.get("probe", 0.0))
        return True

    # --- one checkpoint -------------------------------------------------------------------------
    def add(self, step: int, series: list[dict], bounds: list[dict], influence: list[dict] = (),
            float32_inside: bool = False, *, loss: float | None, seconds: float) -> Curves:
        """Record checkpoint `step` (its Checkpoint's fields; replacing one of the same step) and
        write the folder whole."""
        self.series = [s for s in self.series if _step(s) != step] + series
        self.bounds = [b for b in self.bounds if _step(b) != step] + bounds
        self.influence = [x for x in self.influence if _step(x) != step] + list(influence)
        self.float32_inside = self.float32_inside or float32_inside
        self.checkpoints = sorted(set(self.checkpoints) | {step})
        self.loss[step] = loss
        self.seconds += seconds
        return self.write()

    def curves(self) -> Curves:
        order = {c: i for i, c in enumerate(self.checkpoints)}
        key = lambda item: order[_step(item)]   # noqa: E731  (stable: paths and norms keep their order)
        parts = {"series": sorted(self.series, key=key), "bounds": sorted(self.bounds, key=key),
                 "training": self._training(), "influence": sorted(self.influence, key=key),
                 "float32_inside": [self.id.label] if self.float32_inside else []}
        return assemble(f"monitor {self.id.label}", self.id.plan["lags"], parts)

    def _training(self) -> list[dict]:
        losses = [self.loss.get(c) for c in self.checkpoints]
        if all(v is None for v in losses):
            return []
        kept = [(c, v) for c, v in zip(self.checkpoints, losses) if v is not None]
        return [{"cell": self.id.label, "step": [c for c, _ in kept], "loss": [v for _, v in kept], "grad_norm": [],
                 "memoryless_loss": None, "diverged_at": None, "checkpoints": list(self.checkpoints),
                 "loss_at_checkpoints": losses, "final_loss": losses[-1], "final_accuracy": None,
                 "solved": None, "loss_kind": None, "final_within": None}]

    def run(self, curves: Curves) -> Run:
        cell = RunCell(label=self.id.label, kind=self.id.kind, options={**self.id.options, "probe": self.id.estimator})
        return Run.for_curves(curves, self.id.source, cells=[cell], probe_plan=ProbePlan(**self.id.plan),
                              versions={"diagnostics": __version__, **self.id.versions},
                              timings={"probe": round(self.seconds, 3)})

    def write(self) -> Curves:
        """curves.json and run.json (last) into a staging folder, swapped in whole (publish.py)."""
        curves = self.curves()
        run = self.run(curves)
        keep = self.appending and self.out.is_dir()   # a page drawn meanwhile (diag report out/) stays
        with replacing(self.out, keep=keep) as stage:
            curves.write(stage / Curves.FILE)
            run.write(stage / Run.FILE)
        self.appending = True
        return curves

    def save_baseline(self, path, checkpoint: int | None = None) -> Path:
        """The curves of one checkpoint (the last when None) as a baseline for `diag check`:
        `path` a .json file, or a folder that gets curves.json. An existing file there is
        replaced only when it is a diag-curves document."""
        if not self.checkpoints:
            raise MonitorError("LagMonitor.save_baseline: no checkpoint recorded yet")
        ck = self.checkpoints[-1] if checkpoint is None else checkpoint
        if ck not in self.checkpoints:
            raise MonitorError(f"LagMonitor.save_baseline: checkpoint: must be one of the recorded steps "
                               f"({', '.join(map(str, self.checkpoints))}), got {checkpoint!r}")
        path = Path(path)
        target = path if path.suffix == ".json" else path / Curves.FILE
        if target.exists():
            try:
                Curves.read(target)
            except BadDocument:
                raise MonitorError(f"LagMonitor.save_baseline: {target} exists and is not a diag-curves "
                                   "document; left untouched") from None
        return self.curves().at_checkpoint(ck).write(target)


def _step(item: dict) -> int:
    return item["checkpoint"]


def _settings(plan: dict | None, est: dict) -> str:
    if plan is None:
        return "unknown settings"
    return (f"lags {plan['lags']}, anchors {plan['anchors']}, {plan['sequences']} sequences of {plan['stream']} "
            f"steps, estimator {est.get('estimator')}" + (f" ({est.get('rows')} rows, seed {est.get('seed')})"
                                                          if est.get("estimator") != "exact" else ""))


def summary_of(items: list[dict], norms) -> dict:
    """{"horizon", "decay_factor"} of a checkpoint's decay path ("a"), or of a whole model's
    input-to-output influence ("influence", no state path), in the primary norm: the scalars
    the adapters log."""
    norm = primary_norm(norms)
    for s in items:
        if s["path"] in ("a", "influence") and s["norm"] == norm:
            return {"horizon": _num(s["fit"]["horizon"]), "decay_factor": _num(s["fit"]["factor"])}
    return {"horizon": None, "decay_factor": None}


def _num(v):
    return None if v is None or not np.isfinite(v) else float(v)

