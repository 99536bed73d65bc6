"""Shared pieces of the sweep tests: a tiny base case, sweep files, a cell that raises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import yaml
from distributed.diagnostics.plugin import WorkerPlugin

from diagnostics.cells.rnn import RNN


def tiny_case(steps: int = 20, hidden: int = 8) -> dict:
    """A point that takes well under a second: latch p = 5, two small cells."""
    return {"name": "tiny", "description": "a test point",
            "seed": 0, "task": {"kind": "latch", "p": 5},
            "cells": [{"kind": "rnn", "label": "tanh RNN", "hidden": hidden, "activation": "tanh",
                       "recurrent_init": {"kind": "orthogonal", "gain": 1.0}},
                      {"kind": "lstm", "label": "LSTM", "hidden": hidden}],
            "train": {"steps": steps, "batch": 8, "optimizer": {"kind": "adam", "lr": 0.01}, "clip": 1.0},
            "probe": {"lags": 10, "sequences": 4, "norms": ["spectral"], "lyapunov": 0, "tk_map": {"anchors": 0}}}


def write_sweep(folder, *, vary=None, base=None, name="tiny-sweep", **extra) -> str:
    """A sweep file with its base case beside it; returns the sweep file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(base or tiny_case(), sort_keys=False))
    doc = {"name": name, "base": "base.yaml",
           "vary": vary or {"task.p": [5, 6], "seed": {"range": [0, 2]}},
           "success": {"kind": "loss_below_baseline", "fraction": 0.5}, **extra}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@dataclass(frozen=True)
class Flaky(RNN):
    """An RNN whose step raises at hidden size 7: a point that fails inside the worker."""
    kind: ClassVar[str] = "flaky"

    def step(self, params, state, x):
        if self.hidden == 7:
            raise RuntimeError("deliberate failure at hidden 7")
        return super().step(params, state, x)


class RegisterFlaky(WorkerPlugin):
    """Registers the flaky cell in every worker process (they do not share the test's registry)."""
    name = "register-flaky"

    def setup(self, worker):
        from diagnostics.cells import register_cell
        register_cell("flaky", Flaky, overwrite=True)
