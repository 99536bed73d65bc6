"""A real run folder for testing the report: a small case computed by the runner itself, so
the page is tested on what production writes (not on hand-built JSON).

    python tests/report_fixture.py OUT_DIR [--no-train] [--no-lstm]   # writes OUT_DIR/report-fixture/

The cells are chosen to exercise every figure: a tanh RNN (Pascanu bound), a ReLU RNN with zero
and input weights (its Jacobian is exactly zero: null in curves.json, gaps in the figures), a
GRU and an LSTM (memory paths); the probe also measures the state's sensitivity.
"""
from __future__ import annotations

import sys
from pathlib import Path

from diagnostics.run.runner import run_to_folder
from diagnostics.run.spec import resolve

CHECKPOINTS = [0, 10, 20]


def case(description: str = "Plain RNN against gated memory on the copy task.", train: bool = True,
         lstm: bool = True, sensitivity: bool = True) -> dict:
    cells = [{"kind": "rnn", "label": "tanh RNN", "hidden": 8},
             # all weights zero: z = 0 where relu' = 0, so no gradient ever revives it (dead at every checkpoint)
             {"kind": "rnn", "label": "ReLU RNN", "hidden": 8, "activation": "relu", "recurrent_init": "zeros",
              "input_init": "zeros"},
             {"kind": "gru", "hidden": 8}]
    if lstm:
        cells.append({"kind": "lstm", "hidden": 8})
    out = {"name": "report-fixture", "description": description, "seed": 0,
           "task": {"kind": "copy", "delay": 8, "symbols": 3, "alphabet": 4}, "cells": cells,
           "probe": {"lags": 24, "sequences": 4, "lyapunov": 3, "lyapunov_steps": 60, "tk_map": {"anchors": 3},
                     "sensitivity": sensitivity}}
    if train:
        out["train"] = {"steps": 20, "batch": 8, "optimizer": {"kind": "adam", "lr": 0.01}, "clip": 1.0,
                        "checkpoints": CHECKPOINTS}
    return out


def write_run(out_dir: Path, **kw) -> Path:
    """Run the fixture case into out_dir (curves.json and run.json, no page); the run folder."""
    spec = resolve(case(**kw), base_dir=out_dir)
    return run_to_folder(spec, Path(out_dir), report=False, show=False).folder


if __name__ == "__main__":
    args = sys.argv[1:]
    print(write_run(Path(args[0]), train="--no-train" not in args, lstm="--no-lstm" not in args))
