"""Baseline files: reading them, writing them atomically, and the gate `diag run` uses.

    write_baseline(curves, path)        # temp file + rename: a killed writer leaves the old file intact
    gate(curves, path, tol, update=False, overlays_dir=None) -> GateResult  # compare / write / report missing

Where a case's baseline lives is the resolved case's business (RunSpec.baseline_path).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..documents import BadDocument, Curves
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
