"""`diag new`'s case shows the contrast the tool exists for: over seeds, the LSTM learns the
adding task and the tanh RNN stays near the memoryless loss (its earlier form, T = 50 and
200 steps at lr 0.003, left both cells at the baseline).

Measured on seeds 0-9 (final evaluation loss / baseline; AMD EPYC, OpenBLAS Haswell kernels):
    LSTM      0.045 0.046 0.086 0.040 0.100 0.029 0.053 1.043 0.057 0.131
    tanh RNN  0.868 0.991 0.984 0.586 0.986 1.045 0.843 1.039 1.004 0.975
The LSTM misses in one seed of ten (7), so the claim is 4 of the 5 seeds 0-4, each with the
LSTM below 0.3 (measured at most 0.100) and the RNN above 0.5 (measured at least 0.586).
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from diagnostics.run.newcase import new_case_text
from diagnostics.run.spec import resolve
from diagnostics.training import train


def ratios(seed: int) -> list[float]:
    raw = yaml.safe_load(new_case_text("mine"))
    raw["seed"] = seed
    spec = resolve(raw)
    tr = spec.case.train
    out = []
    for i, cell in enumerate(spec.cells):      # initial weights as diag run draws them (runner.INIT_SEED)
        r = train(cell, cell.init(np.random.default_rng([seed, 1, i])), spec.task, steps=tr.steps, batch=tr.batch,
                  optimizer=tr.optimizer.as_dict(), clip=tr.clip, seed=seed, checkpoints=list(tr.checkpoints))
        out.append(r.final_loss / spec.task.baseline)
    return out


@pytest.mark.slow
def test_the_new_case_shows_the_lstm_learning_where_the_rnn_does_not():
    spec = resolve(yaml.safe_load(new_case_text("mine")))
    assert spec.labels == ("tanh RNN", "lstm")
    runs = [ratios(s) for s in range(5)]
    contrast = [rnn > 0.5 and lstm < 0.3 for rnn, lstm in runs]
    assert sum(contrast) >= 4, runs
