"""Run one case: task, cells, training with checkpoints, the probe at each checkpoint, the
fits, Lyapunov spectra, the Pascanu bound, the (t, k) map; then curves.json + run.json
(atomically) and the report.

Seeds. Everything random comes from the case seed through separate streams, so adding a cell
does not change another cell's numbers: cell i's initial parameters from [seed, 1, i], the
training batches from the trainer's `seed` (the same batches for every cell: a fair race),
the probe stream from [seed, 2]. Same case and seed -> byte-identical curves.json.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import curves as cv
from .caseload import LoadedCase
from .io import atomic_write_json, json_safe
from .lyapunov import lyapunov_spectrum
from .metrics import pascanu_bound
from .plan import ProbePlan, lyapunov_path, make_plan
from .probe import probe
from .runinfo import run_document

PROBE_SEED, INIT_SEED = 2, 1


@dataclass
class RunOutput:
    run_dir: Path
    curves: dict
    run: dict
    summary: list[dict]
    timings: dict = field(default_factory=dict)


def probe_stream(task, plan: ProbePlan, seed: int) -> np.ndarray:
    """(T, B, d): consecutive independent episodes of the task, concatenated (see plan.py)."""
    rng = np.random.default_rng([seed, PROBE_SEED])
    n = plan.total_steps // plan.episode
    eps = [np.asarray(task.sample(rng, plan.sequences).inputs, dtype=np.float64) for _ in range(n)]
    return np.concatenate(eps, axis=0)


def _bar(iterable, desc: str, total: int | None = None, show: bool = True):
    # disable=None: tqdm turns itself off when stderr is not a terminal (CI logs stay clean)
    return tqdm(iterable, desc=desc, total=total, disable=None if show else True, leave=False,
                dynamic_ncols=True)


def _train(lc: LoadedCase, cell, params, label: str, show: bool):
    from .training import train
    tr = lc.case.train
    return train(cell, params, lc.task, steps=tr.steps, batch=tr.batch,
                 optimizer=tr.optimizer.as_dict(), clip=tr.clip, seed=lc.case.seed,
                 checkpoints=list(tr.checkpoints), dtype=tr.dtype,
                 progress=show and sys.stderr.isatty())


def _tk_rows(cell, params, xs, plan: ProbePlan, path: str, norm: str):
    """One probe per anchor, lags min(K, t): k <= t is all an anchor t has."""
    rows = []
    for t in plan.tk_anchors:
        res = probe(cell, params, xs[:t], lags=min(plan.K, t), anchors=[t], paths=[path], norms=[norm])
        rows.append(cv.pooled_summary(res.log10[(path, norm)])["median"])
    return rows


def run_case(lc: LoadedCase, run_dir: Path, *, quick: bool = False, show: bool = True) -> RunOutput:
    """Compute everything and write run_dir/curves.json and run.json (run_dir: the staging
    folder when called from the CLI, see publish.py)."""
    case, task, cells, labels = lc.case, lc.task, lc.cells, lc.labels
    plan = make_plan(case, task, cells)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    xs = probe_stream(task, plan, case.seed)
    parts: dict[str, list] = {k: [] for k in ("series", "lyapunov", "training", "grad_flow", "bounds",
                                              "tk_map", "temporal_components")}
    lags = np.arange(1, plan.K + 1)
    for i, (cell, label) in enumerate(zip(cells, labels)):
        params0 = cell.init(np.random.default_rng([case.seed, INIT_SEED, i]))
        if case.train is not None:
            t0 = time.perf_counter()
            result = _train(lc, cell, params0, label, show)
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
            res = probe(cell, params, xs[:plan.stream], lags=plan.K, anchors=list(plan.anchors),
                        paths=list(plan.paths[i]), norms=list(plan.norms))
            parts["series"] += cv.series_items(label, cell.kind, ck, res, plan.paths[i], plan.norms)
            bound = pascanu_bound(cell, params, lags)
            if bound is not None:
                parts["bounds"].append({"cell": label, "checkpoint": ck, "kind": "pascanu", "log10": bound})
            if plan.lyapunov:
                # the first fifth lets the QR frame align with the dominant directions; not averaged
                ex = lyapunov_spectrum(cell, params, xs[:plan.lyapunov_steps], m=plan.lyapunov,
                                       warmup=plan.lyapunov_steps // 5)
                parts["lyapunov"].append({"cell": label, "checkpoint": ck, "path": lyapunov_path(cell),
                                          "exponents": ex})
            if plan.tk_anchors:
                rows = _tk_rows(cell, params, xs, plan, "a", plan.norms[0])
                parts["tk_map"].append(cv.tk_item(label, ck, "a", plan.norms[0], plan.K, plan.tk_anchors, rows))
        timings[f"probe {label}"] = time.perf_counter() - t0
    # plain JSON values from here on (null for non-finite): what is compared is what is written
    curves = json_safe(cv.assemble(case.name, plan.K, parts))
    summary = cv.summary_rows(curves, [(lab, c.kind) for lab, c in zip(labels, cells)], plan.norms[0])
    timings["compute"] = time.perf_counter() - t_all
    run_dir = Path(run_dir)
    run = run_document(lc, plan, summary, timings, quick=quick)
    # curves first, run.json last: a run.json on disk means its curves.json is complete
    atomic_write_json(run_dir / "curves.json", curves)
    atomic_write_json(run_dir / "run.json", run)
    return RunOutput(run_dir, curves, run, summary, timings)
