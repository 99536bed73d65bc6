"""PyTorch Lightning: a Callback that runs a LagMonitor in a Lightning training (an optional
extra: pip install 'gradient-diagnostics[lightning]'; this module is imported only when used).

    trainer = L.Trainer(callbacks=[LagMonitorCallback(probe_batch, "out/monitor", every=100)])

At the start of training the monitor is built on the LightningModule (its recurrent layer found
as from_module finds it; bad input raises there, one line) and probes the starting weights;
after every training batch (`on_train_batch_end`) it is given the trainer's global step (the
optimiser steps taken) and the batch's loss, and at each checkpoint it logs `lag/horizon` and
`lag/decay_factor` through `pl_module.log`, so they reach whatever logger the trainer has (a
horizon beyond the probed lags is not logged). With gradient accumulation a step is probed once.
"""
from __future__ import annotations

from ..optional import require
from .torch import LagMonitor

L = require("lightning", "LagMonitorCallback")


class LagMonitorCallback(L.pytorch.Callback):
    """LagMonitor(pl_module, inputs, out, **options) driven by the trainer's hooks."""

    def __init__(self, inputs, out, **options):
        super().__init__()
        self.inputs, self.out, self.options = inputs, out, options
        self.monitor: LagMonitor | None = None

    def on_train_start(self, trainer, pl_module):
        self.monitor = LagMonitor(pl_module, self.inputs, self.out, **self.options)
        self.monitor.step(trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        done = self.monitor.step(trainer.global_step, loss=loss)
        for key in ("horizon", "decay_factor"):
            if done is not None and done[key] is not None:
                pl_module.log(f"lag/{key}", float(done[key]), on_step=True, on_epoch=False)

    def on_train_end(self, trainer, pl_module):
        if self.monitor is not None:
            self.monitor.close()
