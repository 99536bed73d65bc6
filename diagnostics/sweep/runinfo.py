"""sweep-run.json ("diag-sweep-run/1"): what varies between two runs of the same sweep (never in sweep.json):
how many points this command ran and skipped, on how many workers, how long, which versions
and machine, and the points' own compute times (from their run.json)."""
from __future__ import annotations

import json
import sys

from ..documents import SWEEP_RUN
from ..run.runinfo import machine, versions
from .engine import point_dir


def _point_seconds(sweep, folder) -> list[float]:
    out = []
    for p in sweep.points:
        f = point_dir(folder, p.id) / "run.json"
        if f.is_file():
            t = json.loads(f.read_text(encoding="utf-8")).get("timings", {})
            if "compute" in t:
                out.append(float(t["compute"]))
    return out


def sweep_run_document(sweep, folder, outcome, seconds: float) -> dict:
    secs = _point_seconds(sweep, folder)
    return {"format": SWEEP_RUN, "sweep": sweep.name, "quick": sweep.quick,
            "sweep_file": str(sweep.path) if sweep.path else None,
            "command": " ".join(["diag"] + sys.argv[1:]),
            "points": outcome.total, "skipped": outcome.skipped, "ran": len(outcome.ran),
            "failed": len(outcome.failed), "workers": outcome.workers,
            "seconds": {"points": round(outcome.seconds, 3), "command": round(seconds, 3),
                        "point_compute_sum": round(sum(secs), 3)},
            "versions": versions(), "machine": machine()}
