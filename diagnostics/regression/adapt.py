"""Turn a probe of (cell, params, xs) into a diag-curves/1 dict (plain JSON values, checked against
documents.Curves), so a user's test can regression-check a cell without writing a case file:

    curves = curves_from_probe(cell, params, xs, label="my lstm", lyapunov=4)
    curves = curves_from_result(probe(cell, params, xs), label="my lstm", kind="lstm")
    curves = curves_from_model(mamba, xs, lags=50)     # any torch sequence model: its influence

The series come from the same builder as `diag run`'s (curves.series_items: quantiles pooled
over every anchor and sequence, the same fit), so a baseline written here reads like a case's
curves.json.
"""
from __future__ import annotations

import numpy as np

from ..interop.influence import lag_influence
from ..interop.memory import memory_paths, supported_mixers
from ..interop.models import ModelError, is_hf
from ..interop.torch import from_module, module_inputs
from ..probing.core import probe
from ..probing.lyapunov import lyapunov_run, state_path
from ..run.curves import assemble, influence_items, series_items


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


def curves_from_model(model, xs, *, lags: int | None = None, label: str | None = None, name: str = "probe",
                      anchors=None, norms=("spectral", "frobenius"), estimator: str = "exact", rows: int = 64, seed: int = 0,
                      layers: bool = False, output=None, memory: bool | None = None) -> dict:
    """diag-curves/1 curves of any torch sequence model on its own inputs xs (as it takes them):
    its input-to-output influence log10 ||d y<t>/d x<t-k>|| (the `influence` items, lags
    0..lags-1, interop.influence.lag_influence) and, for a model holding a selective recurrence
    interop.memory reads (memory None: when it has one), its memory paths l{i}.memory as series.
    lags None: every step of xs (to the last anchor)."""
    lags = lags if lags is not None else min(anchors) if anchors else _steps(model, xs)
    res = lag_influence(model, xs, lags, anchors=anchors, norms=norms, estimator=estimator, rows=rows, seed=seed,
                        layers=layers, output=output)
    label = label or res.model
    parts = {"influence": influence_items(label, res.model, 0, res, res.paths, res.norms),
             "float32_inside": [label] if res.float32_inside else []}
    if memory or (memory is None and _has_memory(model)):
        mem = memory_paths(model, xs, lags, anchors=anchors, norms=norms)
        parts["series"] = series_items(label, res.model, 0, mem, mem.paths, mem.norms)
        parts["float32_inside"] = [label] if res.float32_inside or mem.float32_inside else []
    return assemble(name, lags, parts).to_data()


def _has_memory(model) -> bool:
    try:
        supported_mixers(model)
    except ModelError:
        return False
    return True


def _steps(model, xs) -> int:
    """The steps of xs as the model takes them (interop.models.Call's rule: batch-first for a
    Hugging Face model or a module whose batch_first says so, else time-major)."""
    shape = tuple(xs.shape)
    batch_first = is_hf(model) or bool(getattr(model, "batch_first", False))
    return int(shape[1] if batch_first and len(shape) == 3 else shape[0])
