"""Hugging Face transformers: a TrainerCallback that runs a LagMonitor in a `Trainer` (an
optional extra: pip install 'gradient-diagnostics[hf]'; this module is imported only when used).

    trainer = Trainer(model, args, train_dataset=..., callbacks=[LagMonitorTrainerCallback(batch, "out/monitor")])

`on_train_begin` builds the monitor on the model (bad input raises there, one line) and probes
the starting weights; `on_step_end` gives it the global step (the optimiser steps taken: a step
of gradient accumulation is one); `on_log` hands it the logged training loss (so a checkpoint's
loss is the mean of the losses logged since the one before) and adds `lag_horizon` and
`lag_decay_factor` of the latest checkpoint to the `logs` dict, once per checkpoint, so the
Trainer's reporters (TensorBoard, wandb, ...) get them.
"""
from __future__ import annotations

from ..optional import require
from .torch import LagMonitor

transformers = require("transformers", "LagMonitorTrainerCallback")


class LagMonitorTrainerCallback(transformers.TrainerCallback):
    """LagMonitor(model, inputs, out, **options) driven by the Trainer's events."""

    def __init__(self, inputs, out, **options):
        self.inputs, self.out, self.options = inputs, out, options
        self.monitor: LagMonitor | None = None
        self._reported = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.monitor = LagMonitor(model, self.inputs, self.out, **self.options)
        self.monitor.step(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.monitor.step(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.monitor is None or logs is None:
            return
        if "loss" in logs:
            self.monitor.record_loss(logs["loss"])
        last = self.monitor.last
        if last is not None and last["step"] != self._reported:
            for key in ("horizon", "decay_factor"):
                if last[key] is not None:
                    logs[f"lag_{key}"] = last[key]
            self._reported = last["step"]

    def on_train_end(self, args, state, control, **kwargs):
        if self.monitor is not None:
            self.monitor.close()
