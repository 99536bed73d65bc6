"""CI regression of gradient curves: baselines, log-space tolerances, a diff table, overlays.

    from diagnostics.regression import compare, Tolerances, load_curves, write_baseline
    cmp = compare(load_curves("reports/copy"), load_curves("cases/baselines/copy.json"), Tolerances())
    print(cmp.table()); cmp.ok

`compare` is imported eagerly because the function shares its name with its module (once the
module is imported, a lazy lookup would find the module instead). The rest is imported lazily:
pytest loads this package's plugin in every session, which should cost little when unused.
See tolerances.py for the defaults and for the settings that matter across machines (BLAS
threads and kernels).
"""
from __future__ import annotations

import importlib

from .compare import Comparison, Row, compare
from .tolerances import Tolerances

_EXPORTS = {
    "load_curves": "baseline", "write_baseline": "baseline", "baseline_path_for": "baseline",
    "gate": "baseline", "GateResult": "baseline", "BadCurves": "baseline",
    "write_overlays": "overlay",
    "curves_from_probe": "adapt", "curves_from_result": "adapt",
    "check_cmd": "cli",
}
__all__ = sorted([*_EXPORTS, "Comparison", "Row", "Tolerances", "compare"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
