"""One sweep from resolved points to its files: run what is not finished, aggregate, write
sweep.json and sweep-run.json, draw the page, gate against the baseline.

    result = run_sweep(sweep, out, workers=None, scheduler=None)
    result.doc (sweep.json), result.outcome (ran, skipped, failed), result.gate, result.report_error

`diag sweep` prints it; the tests call it to register worker plugins of their own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..documents import Sweep
from ..publish import claim
from ..regression.baseline import GateResult
from .aggregate import aggregate
from .baseline import gate
from .engine import Outcome, run_points
from .runinfo import sweep_run_document


@dataclass
class SweepResult:
    folder: Path
    doc: Sweep
    outcome: Outcome
    gate: GateResult
    page: Path | None = None
    report_error: str | None = None

    @property
    def exit_code(self) -> int:
        """1 when a point failed or has no result, the page failed or the sweep regressed."""
        n = self.doc.counts
        return max(1 if (n.failed or n.missing or self.report_error) else 0, self.gate.exit_code)


def run_sweep(sweep, out: Path, *, workers: int | None = None, scheduler: str | None = None,
              report: bool = True, update_baseline: bool = False, show: bool = True, plugins=()) -> SweepResult:
    folder = Path(out) / sweep.folder_name
    claim(folder, "sweep")   # the user's files are theirs: refused before the cluster starts
    t0 = time.perf_counter()
    outcome = run_points(sweep, folder, workers=workers, scheduler=scheduler, show=show, plugins=plugins)
    doc = aggregate(sweep, folder)
    doc.write(folder / "sweep.json")
    sweep_run_document(sweep, folder, outcome, time.perf_counter() - t0).write(folder / "sweep-run.json")
    page = error = None
    if report:
        try:
            from .report import render_sweep_report
            page = render_sweep_report(folder, doc, sweep.file.report.title)
        except Exception as e:  # noqa: BLE001 - the numbers are written; the page can be redrawn
            error = f"{e.__class__.__name__}: {e}"
    g = gate(doc, sweep.baseline_path, sweep.file.tolerances, update=update_baseline)
    return SweepResult(folder, doc, outcome, g, page, error)
