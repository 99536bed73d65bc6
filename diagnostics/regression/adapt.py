"""Turn a probe of (cell, params, xs) into a diag-curves/1 dict (plain JSON values, checked against
documents.Curves), so a user's test can regression-check a cell without writing a case file:

    curves = curves_from_probe(cell, params, xs, label="my lstm", lyapunov=4)
    curves = curves_from_result(probe(cell, params, xs), label="my lstm", kind="lstm")

The series come from the same builder as `diag run`'s (curves.series_items: quantiles pooled
over every anchor and sequence, the same fit), so a baseline written here reads like a case's
curves.json.
"""
from __future__ import annotations

import numpy as np

from ..interop.torch import from_module, module_inputs
from ..probing.core import probe
from ..probing.lyapunov import lyapunov_run, state_path
from ..run.curves import assemble, series_items


def curves_from_result(res, *, label: str = "cell", kind: str = "cell", checkpoint: int = 0,
                       name: str = "probe") -> dict:
    """A ProbeResult (from diagnostics.probing.probe) as a diag-curves/1 document."""
    return _document(name, res, {"series": series_items(label, kind, checkpoint, res, res.paths, res.norms)})


def _document(name: str, res, parts: dict) -> dict:
    return assemble(name, int(np.asarray(res.lags)[-1]), parts).to_data()


def curves_from_probe(cell, params, xs, *, label: str | None = None, checkpoint: int = 0,
                      name: str = "probe", lags: int | None = None, paths=None,
                      norms=("spectral", "frobenius"), lyapunov: int = 0) -> dict:
    """Probe `cell` on inputs xs (T, B, d) and return curves in the diag-curves/1 shape."""

    xs = np.asarray(xs, dtype=np.float64)
    label = label or cell.kind
    res = probe(cell, params, xs, lags=lags, paths=paths, norms=tuple(norms))
    spectra = []
    if lyapunov:
        ly = lyapunov_run(cell, params, xs, m=lyapunov)
        spectra.append({"cell": label, "checkpoint": checkpoint, "path": state_path(cell),
                        "exponents": ly.exponents, "resolved": ly.resolved.tolist()})
    return _document(name, res, {"series": series_items(label, cell.kind, checkpoint, res, res.paths, res.norms),
                                 "lyapunov": spectra})


def curves_from_module(module, xs, *, layer=0, direction: str | None = None, label: str | None = None,
                       **kwargs) -> dict:
    """diag-curves/1 curves of a torch recurrent module probed on its own inputs xs (the
    gradient_curves fixture's module branch). kwargs: as curves_from_probe."""
    imp = from_module(module, layer=layer, direction=direction)
    xs = imp.inputs(module_inputs(module, xs), where="xs")
    label = label or f"{type(module).__name__.lower()}" + (f" {direction}" if direction else "")
    return curves_from_probe(imp.cell, imp.params, xs, label=label, **kwargs)
