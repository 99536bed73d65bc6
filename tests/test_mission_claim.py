"""The mission's claim as a CI-sized measurement over several seeds (benchmarks/bench_mission.py
has the full table).

Adding problem (uRNN form), hidden 32, batch 32, Adam lr 1e-2, clip 1, 400 steps; seed s for
both the initial weights and the batches. Short lag (T = 20): both the tanh RNN and the LSTM
beat the memoryless loss. Long lag (T = 100): the LSTM goes well below it while the tanh
RNN stays at it. The long-lag LSTM uses the chrono initialisation (T_max = T): with the default
forget bias 1.0 the LSTM needs about 1500 steps for this (see the benchmark), too long for a test.

One training run amplifies rounding, so a single seed's ratio moves across machines (seed 0's
tanh RNN at T = 20 was below the old threshold of 0.5 where the test was written and 0.533 on
an AMD EPYC). The claims therefore rest on several seeds, with the margins measured on seeds 0-9
(final loss / baseline, AMD EPYC, OpenBLAS Haswell kernels):

    T = 20   tanh RNN        0.533 0.284 0.954 0.439 0.114 0.522 0.246 0.132 0.926 0.299
             LSTM            0.012 0.009 0.007 0.006 0.004 0.005 0.010 0.003 0.021 0.007
    T = 100  LSTM (chrono)   0.007 0.008 0.013 0.026 0.014 0.008 0.017 0.006 0.010 0.008
             tanh RNN        1.050 0.892 1.001 1.071 1.086 0.929 1.030 1.003 1.138 1.217

The tanh RNN at T = 20 learns in some seeds and not others (0.11 to 0.95), so what is claimed
of it is the median: below 0.7 over seeds 0-4 (measured 0.44; two of the four seeds other than
the 0.954 one would have to rise above 0.7 to fail). Every LSTM seed is below 0.1 (measured at most 0.026:
four times inside). At T = 100 the tanh RNN's median stays above 0.8 (measured 1.00 over
seeds 0-2, every seed of ten at least 0.89).
"""
import numpy as np
import pytest

from diagnostics.cells import make_cell
from diagnostics.tasks import make_task
from diagnostics.training import train


def final_ratio(kind, T, seed, **opts):
    task = make_task("adding", length=T)
    cell = make_cell(kind, input_size=2, hidden=32, **opts)
    r = train(cell, cell.init(np.random.default_rng(seed)), task, steps=400, batch=32, seed=seed, clip=1.0,
              optimizer={"kind": "adam", "lr": 1e-2}, checkpoints=[0])
    assert r.diverged_at is None
    return r.final_loss / task.baseline


@pytest.mark.slow
def test_short_lag_both_cells_beat_baseline():
    rnn = [final_ratio("rnn", 20, s, activation="tanh") for s in range(5)]
    lstm = [final_ratio("lstm", 20, s) for s in range(5)]
    assert np.median(rnn) < 0.7, rnn
    assert max(lstm) < 0.1, lstm


@pytest.mark.slow
def test_long_lag_lstm_learns_where_rnn_does_not():
    lstm = [final_ratio("lstm", 100, s, chrono=100) for s in range(3)]
    rnn = [final_ratio("rnn", 100, s, activation="tanh") for s in range(3)]
    assert max(lstm) < 0.1, lstm
    assert np.median(rnn) > 0.8, rnn
