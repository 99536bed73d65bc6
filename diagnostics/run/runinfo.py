"""Building run.json ("diag-run/1"; its fields: diagnostics/documents/run.py): the resolved
case, seed, versions, machine, timings, summary.

Everything that may differ between two runs of the same case (timings, machine, versions)
lives here and never in curves.json, which must be byte-identical for the same case and seed.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata

from threadpoolctl import threadpool_info

from ..documents import RUN, Run
from ..probing.parallel import fork_allowed
from ..version import __version__
from .models import is_model_cell

PACKAGES = ("numpy", "scipy", "matplotlib", "pydantic", "click", "PyYAML", "Jinja2", "tqdm", "threadpoolctl")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR")


MODEL_PACKAGES = ("torch", "transformers", "safetensors")   # recorded when a case has a model cell


def versions(models: bool = False) -> dict:
    out = {"python": platform.python_version(), "diagnostics": __version__}
    for name in PACKAGES + (MODEL_PACKAGES if models else ()):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpus": os.cpu_count(),
            "python_implementation": platform.python_implementation(),
            "threads_env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ}}
    try:  # the BLAS numpy links (threadpoolctl is a dependency; its discovery can still fail)
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads")}
                        for d in threadpool_info()]
    except Exception:  # noqa: BLE001 - informational only
        pass
    # as when this run's probes started: forked only from a quiet process
    info["probe_workers"] = "processes" if fork_allowed() else "threads"
    return info


def _files(spec) -> dict:
    """The files a case read (weights, inputs), with their SHA-256, and what was imported."""
    out = {}
    named = [c.weights.file for c in spec.case.cells if getattr(c, "weights", None) is not None]
    named += [spec.case.probe.inputs_file[0]] if spec.case.probe.inputs else []
    named += [spec.case.probe.tokens_file[0]] if spec.case.probe.tokens else []
    # a save_pretrained folder's files (its weights are what the curves depend on)
    named += [f"{c.model.hf_folder}/{f}" for c in spec.case.cells if getattr(getattr(c, "model", None), "hf_folder", None)
              for f in ("config.json", "model.safetensors")]
    for name in dict.fromkeys(named):
        p = spec.base_dir / name
        data = p.read_bytes()
        out[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    for label, feed in zip(spec.labels, spec.feeds or ()):
        if feed is not None:
            out.setdefault("imported", {})[label] = feed.source
    return out


def _task_description(spec) -> str:
    """The task in words, or the user's own inputs (probe.inputs, probe.tokens) that replaced it."""
    p, plan = spec.case.probe, spec.plan
    if spec.inputs is not None:
        return (f"your own inputs: {_inputs_name(p.inputs_file)} ({spec.inputs.shape[0]} steps, {spec.inputs.shape[1]} "
                f"sequences, {spec.inputs.shape[2]} features; the first {plan.sequences} probed)")
    if spec.tokens is not None:
        return (f"your own token ids: {_inputs_name(p.tokens_file)} ({spec.tokens.shape[0]} steps, "
                f"{spec.tokens.shape[1]} sequences; the first {plan.sequences} probed), each through the model's "
                "own input embedding")
    return spec.task.sentence()


def _inputs_name(file: tuple) -> str:
    """probe.inputs (or tokens) as read: 'xs.npy', or 'runs.npz [xs]' for one array of an .npz."""
    path, key = file
    return path if key is None else f"{path} [{key}]"


def rounded_timings(timings: dict) -> dict:
    return {k: round(v, 3) for k, v in timings.items()}


def run_document(spec, summary, timings) -> Run:
    """run.json: the resolved specification (case with every default, cells as built, the
    probe plan) and what varies between runs of it (versions, machine, timings), checked
    against the model."""
    plan = spec.plan
    return Run.built({"format": RUN, "case": spec.resolved(), "seed": spec.case.seed, "quick": spec.quick,
            "case_file": str(spec.path) if spec.path else None,
            "versions": versions(any(map(is_model_cell, spec.cells))), "timings": rounded_timings(timings),
            "machine": machine(), "command": " ".join(["diag"] + sys.argv[1:]),
            "summary": summary,
            "cells": [{"label": label, "kind": cell.kind,
                       "options": {k: v for k, v in cell.describe().items() if k != "kind"},
                       "doc": (getattr(cell, "doc", None) or type(cell).__doc__ or "").strip() or None}
                      for label, cell in zip(spec.labels, spec.cells)],
            "task_description": _task_description(spec),
            "task_lag": spec.task.lag if spec.inputs is None and spec.tokens is None else None,
            "files": _files(spec),
            "probe_plan": {"lags": plan.K, "episode": plan.episode, "stream": plan.stream,
                           "anchors": list(plan.anchors), "tk_anchors": list(plan.tk_anchors),
                           "lyapunov": plan.lyapunov, "lyapunov_steps": plan.lyapunov_steps,
                           "sequences": plan.sequences, "norms": list(plan.norms),
                           "sensitivity": plan.sensitivity,
                           "paths": {label: list(p) for label, p in zip(spec.labels, plan.paths)}}},
                  "run.json as built")
