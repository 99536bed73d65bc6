"""A synthetic but realistic run folder (curves.json + run.json) for testing the report.

The curves follow the shapes real runs give (geometric decay of the RNN, slower GRU, a nearly
flat LSTM memory path, a ReLU RNN whose Jacobian becomes exactly zero -> null) so the figures
can be looked at, but none of these numbers is a measurement.

    python tests/report_fixture.py OUT_DIR [--no-train] [--no-lstm]   # writes a run folder
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from diagnostics.io import atomic_write_json

K, T, ANCHORS = 80, 50, [20, 40, 60, 80]
BASELINE = 10 * math.log(8) / (T + 20)   # copy task, memoryless cross-entropy per step


def _fit(lags, y):
    ok = np.isfinite(y)
    slope = float(np.polyfit(lags[ok], y[ok], 1)[0])
    factor = 10.0 ** slope
    tau = -1.0 / (slope * math.log(10)) if factor < 1 else None
    hit = np.flatnonzero(~(y > y[0] - 3.0))
    return {"slope": slope, "factor": factor, "tau": tau, "horizon": int(lags[hit[0]]) if hit.size else None}


def _series(cell, kind, ck, path, norm, rate, rng, zero_after=None, offset=0.0):
    lags = np.arange(1, K + 1, dtype=float)
    med = offset + lags * math.log10(rate) + 0.04 * rng.standard_normal(K) + 0.3 * np.exp(-lags / 5)
    if norm == "frobenius":
        med = med + 0.6 + 0.1 * np.exp(-lags / 10)
    spread = 0.15 + 0.004 * lags
    stats = {"median": med, "q25": med - spread, "q75": med + spread, "min": med - 2.5 * spread,
             "max": med + 2.5 * spread}
    if zero_after is not None:           # exact zeros (dead ReLU units) are JSON null
        for v in stats.values():
            v[zero_after:] = -np.inf
    return {"cell": cell, "kind": kind, "checkpoint": ck, "path": path, "norm": norm,
            "log10": {k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in stats.items()},
            "fit": _fit(lags, stats["median"])}


def make_run(description: str = "Plain RNN against gated memory on the copy task.",
             train: bool = True, lstm: bool = True, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    checkpoints = [0, 100, 300] if train else [0]
    cells = [("tanh RNN", "rnn", {"hidden": 32, "activation": "tanh", "recurrent_init": {"kind": "orthogonal", "gain": 1.0}}),
             ("ReLU RNN", "rnn", {"hidden": 32, "activation": "relu", "recurrent_init": {"kind": "gaussian", "gain": 1.2}}),
             ("gru", "gru", {"hidden": 32, "reset_gate": True})]
    if lstm:
        cells.append(("lstm", "lstm", {"hidden": 32, "forget_gate": True, "output_tanh": True, "forget_bias": 1.0}))
    rates = {"tanh RNN": 0.90, "ReLU RNN": 0.85, "gru": 0.965, "lstm": 0.975}
    series, bounds, tk, lyap, flows, temporal, training, summary = [], [], [], [], [], [], [], []
    for label, kind, _ in cells:
        for i, ck in enumerate(checkpoints):
            r = rates[label] ** (1 - 0.35 * i / max(1, len(checkpoints) - 1))
            zero = 55 if label == "ReLU RNN" else None
            paths = ("a", "c", "c_direct", "state") if kind == "lstm" else ("a",)
            for path in paths:
                pr = {"a": r, "c": r ** 0.4, "c_direct": 0.731 ** (1 - 0.6 * i / 2), "state": r ** 0.4}[path]
                for norm in ("spectral", "frobenius"):
                    series.append(_series(label, kind, ck, path, norm, pr, rng, zero))
            if kind == "rnn":
                smax = 1.0 if label == "tanh RNN" else 1.2 + 0.05 * i
                bounds.append({"cell": label, "checkpoint": ck, "kind": "pascanu",
                               "log10": [k * math.log10(smax) for k in range(1, K + 1)]})
            rows = []
            for t in ANCHORS:
                k = np.arange(1, K + 1)
                row = k * math.log10(r) * (1 + 0.1 * math.sin(t / 13)) + 0.05 * rng.standard_normal(K)
                rows.append([float(v) if kk <= t else None for kk, v in zip(k, row)])
            tk.append({"cell": label, "checkpoint": ck, "path": "a", "norm": "spectral", "anchors": ANCHORS,
                       "log10_median": rows})
            lam = math.log(r) - 0.09 * np.arange(8) - 0.01 * rng.random(8)
            lyap.append({"cell": label, "checkpoint": ck, "path": "state" if kind == "lstm" else "a",
                         "exponents": [float(x) for x in lam]})
            if train:
                s = np.arange(1, T + 1)
                flows.append({"cell": label, "checkpoint": ck, "t": s.tolist(),
                              "log10": (-1.5 + (T - s) * math.log10(r) * 0.8).tolist()})
                temporal.append({"cell": label, "checkpoint": ck, "lags": list(range(1, K + 1)),
                                 "log10": (-0.5 + np.arange(1, K + 1) * math.log10(r)).tolist()})
            summary.append({"cell": label, "kind": kind, "checkpoint": ck, **_first_fit(series, label, ck),
                            "lyapunov_top": float(lam[0]), "final_loss": None, "baseline": BASELINE if train else None,
                            "solved": None})
        if train:
            steps = np.arange(0, 301, 5)
            floor = 0.02 if kind == "lstm" else BASELINE * 1.02
            loss = floor + (math.log(9) - floor) * np.exp(-steps / 40)
            loss = loss * (1 + 0.03 * rng.standard_normal(steps.size))
            diverged = 250 if label == "ReLU RNN" else None
            loss_l = [None if diverged and st >= diverged else float(v) for st, v in zip(steps, loss)]
            training.append({"cell": label, "step": steps.tolist(), "loss": loss_l,
                             "grad_norm": ((2.0 + len(training)) * np.exp(-steps / (60 + 40 * len(training)))
                                           * np.exp(0.2 * rng.standard_normal(steps.size)) + 0.1).tolist(), "baseline": BASELINE,
                             "diverged_at": diverged, "checkpoints": checkpoints,
                             "loss_at_checkpoints": [loss_l[int(c // 5)] for c in checkpoints],
                             "final_loss": loss_l[-1], "final_accuracy": 0.99 if kind == "lstm" else 0.2,
                             "solved": kind == "lstm", "loss_kind": "xent"})
            for row in summary:
                if row["cell"] == label:
                    row.update(final_loss=loss_l[-1], solved=kind == "lstm")
    curves = {"format": "diag-curves/1", "case": "report-fixture", "lags": list(range(1, K + 1)),
              "series": series, "lyapunov": lyap, "training": training, "grad_flow": flows,
              "bounds": bounds, "tk_map": tk, "temporal_components": temporal}
    case = {"name": "report-fixture", "description": description, "seed": seed,
            "task": {"kind": "copy", "delay": T, "symbols": 10, "alphabet": 8},
            "cells": [{"kind": k, "label": lbl, **o} for lbl, k, o in cells],
            "probe": {"lags": K, "sequences": 16, "norms": ["spectral", "frobenius"], "lyapunov": 8}}
    if train:
        case["train"] = {"steps": 300, "batch": 32, "optimizer": {"kind": "adam", "lr": 0.001}, "clip": 1.0,
                         "checkpoints": checkpoints}
    run = {"format": "diag-run/1", "case": case, "seed": seed,
           "versions": {"python": "3.11", "numpy": np.__version__, "diagnostics": "0.1.0"},
           "timings": {"probe": 1.25, "train": 3.5}, "machine": {"cpus": 2},
           "summary": summary, "task_lag": T + 10, "cells": [{"label": lbl, "kind": k, "options": o} for lbl, k, o in cells],
           "task_description": f"Copy task: remember 10 symbols from an alphabet of 8 over a delay of {T} steps."}
    return curves, run


def _first_fit(series, label, ck) -> dict:
    s = next(s for s in series if (s["cell"], s["checkpoint"], s["path"], s["norm"]) == (label, ck, "a", "spectral"))
    return {k: s["fit"][k] for k in ("factor", "tau", "horizon")}


def write_run(out_dir: Path, **kw) -> Path:
    out_dir = Path(out_dir)
    curves, run = make_run(**kw)
    atomic_write_json(out_dir / "curves.json", curves)
    atomic_write_json(out_dir / "run.json", run)
    return out_dir


if __name__ == "__main__":
    args = sys.argv[1:]
    write_run(Path(args[0]), train="--no-train" not in args, lstm="--no-lstm" not in args)
