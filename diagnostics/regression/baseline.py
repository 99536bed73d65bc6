"""Baseline files: where they live, reading them, writing them atomically, and the gate `diag run` uses.

    baseline_path_for("copy", "cases/copy.yaml")              -> cases/baselines/copy.json
    baseline_path_for("copy", "cases/copy.yaml", quick=True)  -> cases/baselines/copy.quick.json
    baseline_path_for("copy", "cases/copy.yaml", explicit="b/x.json") -> cases/b/x.json (relative to the case file)
    write_baseline(curves, path)        # temp file + rename: a killed writer leaves the old file intact
    gate(curves, path, tol, update=False, overlays_dir=None) -> GateResult  # compare / write / report missing
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_write_text, dumps
from .compare import Comparison, compare
from .tolerances import Tolerances

FORMAT = "diag-curves/1"


class BadCurves(ValueError):
    """A curves file that cannot be compared; the message is one line naming the file and the problem."""


def _resolve(path_or_run_dir: str | os.PathLike) -> Path:
    p = Path(path_or_run_dir)
    return p / "curves.json" if p.is_dir() else p


def load_curves(path_or_run_dir: str | os.PathLike) -> dict:
    """Read a curves.json (or RUN_DIR/curves.json) and check it is a diag-curves/1 document."""
    p = _resolve(path_or_run_dir)
    if not p.exists():
        where = f"{path_or_run_dir} has no curves.json" if Path(path_or_run_dir).is_dir() else f"{p}: no such file"
        raise BadCurves(where)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadCurves(f"{p}: not a text file (expected diag-curves/1 JSON)") from None
    except json.JSONDecodeError as e:
        raise BadCurves(f"{p}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except OSError as e:
        raise BadCurves(f"{p}: cannot read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise BadCurves(f"{p}: expected a JSON object with format {FORMAT!r}, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise BadCurves(f"{p}: format: expected {FORMAT!r}, got {data.get('format')!r}")
    for key in ("lags", "series"):
        if not isinstance(data.get(key), list):
            raise BadCurves(f"{p}: {key}: expected a list, got {type(data.get(key)).__name__}")
    return data


def baseline_path_for(case_name: str, case_file: str | os.PathLike, explicit: str | os.PathLike | None = None,
                      quick: bool = False) -> Path:
    """The baseline of a case: `explicit` (relative to the case file's folder) or
    <case folder>/baselines/<name>.json. Quick runs keep their own file, <stem>.quick.json, since
    their lags and steps differ."""
    folder = Path(case_file).parent
    if explicit is not None:
        p = Path(explicit)
        p = p if p.is_absolute() else folder / p
    else:
        p = folder / "baselines" / f"{case_name}.json"
    if quick:
        p = p.with_name(f"{p.stem}.quick{p.suffix or '.json'}")
    return p


def write_baseline(curves: dict, path: str | os.PathLike) -> Path:
    """Write curves as a baseline atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    atomic_write_text(path, dumps(curves))
    return path


@dataclass
class GateResult:
    status: str                       # "ok" | "regression" | "missing" | "written"
    path: Path
    comparison: Comparison | None = None
    overlays: list | None = None

    @property
    def exit_code(self) -> int:
        """1 for a regression; a missing baseline is reported but is not a failure of the run."""
        return 1 if self.status == "regression" else 0

    def message(self) -> str:
        if self.status == "written":
            return f"baseline written: {self.path}"
        if self.status == "missing":
            return f"no baseline at {self.path} (not created; rerun with --update-baseline to write it)"
        text = self.comparison.table()
        if self.status == "regression":
            text = f"REGRESSION against {self.path}\n{text}"
            if self.overlays:
                text += "\noverlays: " + ", ".join(str(p) for p in self.overlays)
        else:
            text = f"baseline {self.path}: {text}"
        return text


def gate(curves: dict, path: str | os.PathLike, tol: Tolerances | None = None, *, update: bool = False,
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
