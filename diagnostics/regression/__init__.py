"""CI regression of gradient curves: baselines, log-space tolerances, a diff table, overlays.

    from diagnostics.regression import compare, Tolerances, load_curves, write_baseline
    cmp = compare(load_curves("reports/copy"), load_curves("cases/baselines/copy.json"), Tolerances())
    print(cmp.table()); cmp.ok

Everything loads on first use: pytest loads this package's plugin in every session of the
environment, which must cost nothing when the fixture is not used.
"""
from __future__ import annotations

_EXPORTS = {
    "compare": "comparison", "Comparison": "comparison", "Row": "comparison",
    "load_curves": "baseline", "write_baseline": "baseline", "gate": "baseline",
    "GateResult": "baseline", "BadCurves": "baseline",
    "write_overlays": "overlay",
    "curves_from_probe": "adapt", "curves_from_result": "adapt",
}
__all__ = sorted([*_EXPORTS, "Tolerances"])


def __getattr__(name: str):
    # plain import statements (not importlib), so the import-graph test sees these edges
    if name == "Tolerances":
        from ..tolerances import Tolerances as value
    elif _EXPORTS.get(name) == "comparison":
        from . import comparison as module
        value = getattr(module, name)
    elif _EXPORTS.get(name) == "baseline":
        from . import baseline as module
        value = getattr(module, name)
    elif name == "write_overlays":
        from .overlay import write_overlays as value
    elif _EXPORTS.get(name) == "adapt":
        from . import adapt as module
        value = getattr(module, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return value
