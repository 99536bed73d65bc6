"""Running a resolved case (a RunSpec, diagnostics/run/spec.py), in two layers:

    result = compute(spec)                   # in memory: curves.json's document, summary, timings
    out = run_to_folder(spec, reports_dir)   # compute, then write <reports_dir>/<name>/ whole

`compute` trains each cell with checkpoints, probes every checkpoint, fits, takes Lyapunov
spectra, the Pascanu bound and the (t, k) map (on the cell's decay path: a, or state for a
cell whose output is not fed back, Cell.decay_path); the pytest plugin and `diag sweep` call it
directly. `run_to_folder` writes curves.json, the report and run.json (once, last) into a
staging folder and swaps it in whole, or on any error leaves the previous folder as it was
(publish.py); `diag run` adds the baseline gate and the printing on top (cli/main.py). With
`probe.sensitivity` each checkpoint also gets the state's sensitivity to its recurrent
parameters, by lag (diagnostics/sensitivity/).

Seeds. Everything random comes from the case seed through separate streams, so adding a cell
does not change another cell's numbers: cell i's initial parameters from [seed, 1, i], the
training batches from the trainer's `seed` (the same batches for every cell: a fair race),
the probe stream from [seed, 2]. Same case and seed -> byte-identical curves.json.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..documents import Curves, Run, SummaryRow, primary_norm
from ..interop.influence import lag_influence
from ..interop.memory import memory_paths
from ..interop.models import ModelError
from ..probing.core import probe
from ..probing.estimator import AUTO_WIDTH
from ..probing.lyapunov import lyapunov_run, state_path
from ..probing.metrics import pascanu_bound
from ..publish import claim, replacing
from ..sensitivity import state_sensitivity
from ..training import train
from . import curves as cv
from .models import ModelCell, is_model_cell, model_inputs, token_inputs
from .plan import ProbePlan
from .runinfo import rounded_timings, run_document
from .spec import RunSpec

PROBE_SEED, INIT_SEED = 2, 1


@dataclass
class RunResult:
    curves: Curves               # the curves.json document
    summary: list[SummaryRow]    # per cell and checkpoint (run.json's summary, the CLI table)
    timings: dict = field(default_factory=dict)


@dataclass
class RunOutput:
    folder: Path                 # the published report folder
    result: RunResult
    run: Run                     # run.json as written


def probe_stream(task, plan: ProbePlan, seed: int, show: bool = False) -> np.ndarray:
    """(T, B, d): consecutive independent episodes of the task, concatenated (see plan.py)."""
    rng = np.random.default_rng([seed, PROBE_SEED])
    n = plan.total_steps // plan.episode
    eps = []
    with _phase("probe stream", show, unit="episode") as report:
        for i in range(n):
            eps.append(np.asarray(task.sample(rng, plan.sequences).inputs, dtype=np.float64))
            if report is not None:
                report(i + 1, n)
    return np.concatenate(eps, axis=0)


def _bar(iterable, desc: str, total: int | None = None, show: bool = True):
    # disable=None: tqdm turns itself off when stderr is not a terminal (CI logs stay clean)
    return tqdm(iterable, desc=desc, total=total, disable=None if show else True, leave=False,
                dynamic_ncols=True)


PHASE_DELAY = 0.5   # s before a phase's bar appears: the many short phases do not flicker


@contextmanager
def _phase(desc: str, show: bool, unit: str = "step"):
    """report(done, total) feeding a bar for one phase of a run (the stream, a probe, a
    Lyapunov spectrum ...), or None when bars are off (as _bar's): the loops then count nothing."""
    bar = tqdm(desc=desc, disable=None if show else True, leave=False, dynamic_ncols=True, unit=unit,
               delay=PHASE_DELAY)
    try:
        if bar.disable:
            yield None
            return

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)   # tqdm redraws at most every 0.1 s
        yield report
    finally:
        bar.close()


def _train(spec: RunSpec, cell, params, show: bool):
    tr = spec.case.train
    return train(cell, params, spec.task, steps=tr.steps, batch=tr.batch,
                 optimizer=tr.optimizer.as_dict(), clip=tr.clip, seed=spec.case.seed,
                 checkpoints=list(tr.checkpoints), dtype=tr.dtype,
                 progress=show and sys.stderr.isatty())


def _estimator_args(plan: ProbePlan) -> dict:
    """probe()'s estimator arguments from the plan (probe.estimator)."""
    kind, rows, seed = plan.estimator
    return {"estimator": kind, "rows": rows, "seed": seed}


def _tk_rows(cell, params, xs, plan: ProbePlan, path: str, norm: str, workers=None, report=None):
    """One probe per anchor, lags min(K, t): k <= t is all an anchor t has. `report(done,
    total)`: progress over all of them, in the probe's units (t forward steps, min(K, t) lags)."""
    rows, done = [], 0
    total = sum(t + min(plan.K, t) for t in plan.tk_anchors)
    for t in plan.tk_anchors:
        res = probe(cell, params, xs[:t], lags=min(plan.K, t), anchors=[t], paths=[path], norms=[norm],
                    workers=workers, **_estimator_args(plan),
                    progress=None if report is None else lambda n, _, d=done: report(d + n, total))
        rows.append(cv.pooled_summary(res.log10[(path, norm)])["median"])
        done += t + min(plan.K, t)
    return rows


def _model_estimator(plan: ProbePlan, cell: ModelCell) -> dict:
    """lag_influence's estimator arguments: probe.estimator's (auto: the sketch for a model at
    least AUTO_WIDTH wide, as for a path of the probe's)."""
    kind, rows, seed = plan.estimator
    if kind == "auto":
        kind = "sketch" if (cell.width or 0) >= AUTO_WIDTH else "exact"
    return {"estimator": kind, "rows": rows, "seed": seed}


def _measure_model(spec: RunSpec, cell: ModelCell, label: str, xs, parts: dict) -> None:
    """A model cell's influence items (lags 0..K-1) and, for the selective recurrences the
    interop knows (or when the case asks), its memory paths as series (lags 1..K), on the
    probe inputs (probe.inputs, or probe.tokens through the model's own embedding)."""
    plan = spec.plan
    x = (model_inputs(cell, xs[:plan.stream]) if spec.tokens is None
         else token_inputs(cell, spec.tokens[:plan.stream, :plan.sequences]))
    res = lag_influence(cell.model, x, plan.K, anchors=list(plan.anchors), norms=tuple(plan.norms),
                        layers=cell.layers, output=cell.output, **_model_estimator(plan, cell))
    parts["influence"] += cv.influence_items(label, cell.kind, 0, res, res.paths, plan.norms)
    if res.float32_inside:
        parts["float32_inside"].append(label)
    if cell.memory:
        mem = memory_paths(cell.model, x, plan.K, anchors=list(plan.anchors), norms=tuple(plan.norms))
        parts["series"] += cv.series_items(label, cell.kind, 0, mem, mem.paths, plan.norms)


def compute(spec: RunSpec, *, show: bool = True, workers: int | None = None) -> RunResult:
    """Everything the case asks for, in memory (nothing is written). `workers`: the probe's
    (probe() decides when None); `diag sweep` passes 1, its parallelism being across points."""
    case, task, plan = spec.case, spec.task, spec.plan
    norm = primary_norm(plan.norms)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    xs = (spec.inputs[:, :plan.sequences] if spec.inputs is not None else None if spec.tokens is not None
          else probe_stream(task, plan, case.seed, show))
    parts: dict[str, list] = {k: [] for k in ("series", "lyapunov", "training", "grad_flow", "bounds", "tk_map",
                                              "temporal_components", "sensitivity", "influence", "float32_inside")}
    lags = np.arange(1, plan.K + 1)
    for i, (cell, label) in enumerate(zip(spec.cells, spec.labels)):
        if is_model_cell(cell):
            t0 = time.perf_counter()
            with _phase(f"{label}: influence", show):
                try:
                    _measure_model(spec, cell, label, xs, parts)
                except ModelError as e:   # inputs it does not take, an output not finite: which cell
                    raise ModelError([f"cells[{i}] ({label}): {line}" for line in e.lines]) from None
            timings[f"probe {label}"] = time.perf_counter() - t0
            continue
        feed = spec.feeds[i] if spec.feeds else None
        # a cell read from a weight file starts from those weights (and trains from them)
        params0 = feed.params if feed is not None else cell.init(np.random.default_rng([case.seed, INIT_SEED, i]))
        xs_i = feed.inputs(xs) if feed is not None else xs     # through layers below, reversed for backward
        if case.train is not None:
            t0 = time.perf_counter()
            result = _train(spec, cell, params0, show)
            timings[f"train {label}"] = time.perf_counter() - t0
            ckpts = {int(k): v for k, v in result.checkpoint_params.items()}
            parts["training"].append(cv.training_item(label, result, case.train.checkpoints, task.loss_kind))
            parts["grad_flow"] += cv.grad_flow_items(label, result)
            parts["temporal_components"] += cv.temporal_items(label, result)
        else:
            ckpts = {0: params0}
        t0 = time.perf_counter()
        for ck in _bar(sorted(ckpts), f"probe {label}", show=show):
            params = ckpts[ck]
            at = f"{label} @{ck}"
            with _phase(f"{at}: forward pass and lags", show) as report:
                res = probe(cell, params, xs_i[:plan.stream], lags=plan.K, anchors=list(plan.anchors),
                            paths=list(plan.paths[i]), norms=list(plan.norms), workers=workers, progress=report,
                            **_estimator_args(plan))
            parts["series"] += cv.series_items(label, cell.kind, ck, res, plan.paths[i], plan.norms)
            bound = pascanu_bound(cell, params, lags)
            if bound is not None:
                parts["bounds"].append({"cell": label, "checkpoint": ck, "kind": "pascanu", "log10": bound})
            if plan.lyapunov:
                # the first fifth lets the QR frame align with the dominant directions; not averaged
                ly_xs, warm = xs_i[:plan.lyapunov_steps], plan.lyapunov_steps // 5
                with _phase(f"{at}: Lyapunov spectrum", show) as report:
                    ly = lyapunov_run(cell, params, ly_xs, m=plan.lyapunov, warmup=warm, progress=report)
                parts["lyapunov"].append(cv.lyapunov_item(label, ck, state_path(cell), ly, ly_xs.shape[1]))
            if plan.tk_anchors and cell.decay_path is not None:
                with _phase(f"{at}: (t, k) map", show) as report:
                    rows = _tk_rows(cell, params, xs_i, plan, cell.decay_path, norm, workers, report)
                parts["tk_map"].append(cv.tk_item(label, ck, cell.decay_path, norm, plan.K, plan.tk_anchors, rows))
            if plan.sensitivity:
                t1 = time.perf_counter()
                with _phase(f"{at}: sensitivity", show) as report:
                    sens = state_sensitivity(cell, params, xs_i[:plan.stream], lags=plan.K, anchors=list(plan.anchors),
                                             progress=report)
                parts["sensitivity"] += cv.sensitivity_items(label, ck, sens)
                timings[f"sensitivity {label}"] = timings.get(f"sensitivity {label}", 0.0) + time.perf_counter() - t1
        timings[f"probe {label}"] = time.perf_counter() - t0
    # a cell whose output is not fed back has its decay read on "state": its own say, recorded
    parts["state_decay"] = [lab for c, lab in zip(spec.cells, spec.labels) if getattr(c, "decay_path", "a") == "state"]
    # the document as written (null for non-finite): what is compared is what is written
    curves = cv.assemble(case.name, plan.K, parts)
    summary = cv.summary_rows(curves, [(lab, c.kind) for lab, c in zip(spec.labels, spec.cells)], norm)
    timings["compute"] = time.perf_counter() - t_all
    return RunResult(curves, summary, timings)


def run_to_folder(spec: RunSpec, out: Path, *, report: bool = True, show: bool = True,
                  result: RunResult | None = None, extra=None) -> RunOutput:
    """Compute (unless `result` is given) and publish out/<folder_name>/ whole: curves.json,
    the report, then run.json, in a staging folder swapped in at the end (publish.py). Whole
    or not at all: if anything fails, the page included (a full disk, a figure that cannot be
    drawn), the previous folder is as it was and the error is raised. A folder that is not
    this tool's to replace is refused (publish.ForeignFolder) before anything is computed.
    `extra(stage)` writes more into the folder before it is swapped in (diag run's regression
    overlays), under the same rule."""
    final = Path(out) / spec.folder_name
    claim(final)
    result = result or compute(spec, show=show)
    with replacing(final) as stage:
        if extra is not None:
            extra(stage)
        result.curves.write(stage / "curves.json")
        run = run_document(spec, result.summary, result.timings)   # once: it hashes the files read
        if report:   # the page is drawn from the documents in memory, before run.json exists
            from ..report import render_report
            t0 = time.perf_counter()
            render_report(stage, curves=result.curves, run=run)
            result.timings["report"] = time.perf_counter() - t0
            run.timings = rounded_timings(result.timings)
        # run.json last, once: a run.json on disk means the folder is complete
        run.write(stage / "run.json")
    return RunOutput(final, result, run)
