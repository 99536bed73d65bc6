"""sweep-run.json ("diag-sweep-run/1"; its fields: diagnostics/documents/sweep.py SweepRun): what
varies between two runs of the same sweep (never in sweep.json): how many points this command ran
and skipped, on how many workers, how long, which versions and machine, and the points' own
compute times (from their run.json)."""
from __future__ import annotations

import sys

from ..documents import SWEEP_RUN, BadDocument, Run, SweepRun
from ..run.runinfo import machine, versions
from .engine import point_dir


def _point_seconds(sweep, folder) -> list[float]:
    """The compute time of every finished point whose run.json can be read."""
    out = []
    for p in sweep.points:
        f = point_dir(folder, p.id) / "run.json"
        if f.is_file():
            try:
                t = Run.read(f).timings
            except BadDocument:   # a point folder written by another version: no time to add
                continue
            if "compute" in t:
                out.append(float(t["compute"]))
    return out


def sweep_run_document(sweep, folder, outcome, seconds: float) -> SweepRun:
    secs = _point_seconds(sweep, folder)
    return SweepRun.built({"format": SWEEP_RUN, "sweep": sweep.name, "quick": sweep.quick,
                        "sweep_file": str(sweep.path) if sweep.path else None,
                        "command": " ".join(["diag"] + sys.argv[1:]),
                        "points": outcome.total, "skipped": outcome.skipped, "ran": len(outcome.ran),
                        "failed": len(outcome.failed), "workers": outcome.workers,
                        "seconds": {"points": round(outcome.seconds, 3), "command": round(seconds, 3),
                                    "point_compute_sum": round(sum(secs), 3)},
                        "versions": versions(), "machine": machine()}, "sweep-run.json as built")
