"""Baseline files: reading them, writing them atomically, and the gate `diag run` uses.

    write_baseline(curves, path)        # temp file + rename: a killed writer leaves the old file intact
    gate(curves, path, tol, update=False, overlays_dir=None) -> GateResult  # compare / write / report missing

Where a case's baseline lives is the resolved case's business (RunSpec.baseline_path).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..documents import BadDocument, Curves, Run
from ..tolerances import Tolerances
from .comparison import Comparison, compare

BadCurves = BadDocument   # the name this package has always raised


def load_curves(path_or_run_dir: str | os.PathLike) -> Curves:
    """Read a curves.json (or RUN_DIR/curves.json) as a diag-curves/1 document (documents.Curves;
    BadCurves, one line naming the file and the problem, if it is not one)."""
    return Curves.read(path_or_run_dir)


def write_baseline(curves: Curves | dict, path: str | os.PathLike) -> Path:
    """Write curves (a document, or a dict checked into one) as a baseline atomically (temp file
    in the same folder, fsync, rename)."""
    return Curves.of(curves, "curves").write(path)


def monitored(path: str | os.PathLike) -> bool:
    """Do the curves at `path` (a run folder or its curves.json) come from a LagMonitor's
    training loop (run.json beside them says so)?"""
    p = Path(path)
    try:
        return Run.read(p if p.is_dir() else p.parent / Run.FILE).monitored
    except BadDocument:
        return False


def one_checkpoint(current: Curves, baseline: Curves, checkpoint: int | None) -> tuple[Curves, Curves, str | None]:
    """Both sides cut to one checkpoint: `checkpoint` (CURRENT's last when None) of CURRENT,
    against the baseline's same checkpoint, or its last one when it has no such step (a
    baseline saved at one moment of an earlier training), compared as if at that step; the
    note says which. ValueError (one line) when CURRENT has no such checkpoint."""
    cks = current.checkpoints
    n = cks[-1] if checkpoint is None and cks else checkpoint
    if n not in cks:
        raise ValueError(f"--checkpoint: must be a checkpoint of CURRENT ({', '.join(map(str, cks)) or 'none'}), "
                         f"got {checkpoint}")
    have = baseline.checkpoints
    m = n if n in have or not have else have[-1]
    base = baseline.at_checkpoint(m)
    note = None
    if m != n:
        data = base.to_data()
        for key, items in data.items():
            if isinstance(items, list):
                for it in items:
                    if isinstance(it, dict) and "checkpoint" in it:
                        it["checkpoint"] = n
        for t in data.get("training", []):
            t["checkpoints"] = [n]
        base = Curves.of(data, "baseline")
        note = f"note: checkpoint {n} of CURRENT against the baseline's checkpoint {m} (it has no step {n})"
    return current.at_checkpoint(n), base, note


@dataclass
class GateResult:
    status: str                       # "ok" | "regression" | "missing" | "written"
    path: Path
    comparison: Comparison | None = None
    overlays: list | None = None
    noun: str = "baseline"            # "sweep baseline" for a sweep's gate

    @property
    def exit_code(self) -> int:
        """1 for a regression; a missing baseline is reported but is not a failure of the run."""
        return 1 if self.status == "regression" else 0

    def message(self) -> str:
        if self.status == "written":
            return f"{self.noun} written: {self.path}"
        if self.status == "missing":
            return f"no {self.noun} at {self.path} (not created; rerun with --update-baseline to write it)"
        text = self.comparison.table()
        if self.status == "regression":
            text = f"REGRESSION against {self.path}\n{text}"
            if self.overlays:
                text += "\noverlays: " + ", ".join(str(p) for p in self.overlays)
        else:
            text = f"baseline {self.path}: {text}"
        return text


def gate(curves: Curves | dict, path: str | os.PathLike, tol: Tolerances | None = None, *, update: bool = False,
         overlays_dir: str | os.PathLike | None = None) -> GateResult:
    """What `diag run` does after a run: write the baseline (update=True), report it missing
    (never created silently), or compare and draw overlays of failing series."""
    path = Path(path)
    if update:
        return GateResult("written", write_baseline(curves, path))
    if not path.exists():
        return GateResult("missing", path)
    base = load_curves(path)
    cmp = compare(curves, base, tol)
    if cmp.ok:
        return GateResult("ok", path, cmp)
    overlays = None
    if overlays_dir is not None:
        from .overlay import write_overlays
        overlays = write_overlays(cmp, curves, base, overlays_dir)
    return GateResult("regression", path, cmp, overlays)
