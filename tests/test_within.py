"""The per-sequence `within` measure the trainer records (the 1997 adding paper's success
count): the fraction of evaluation answers within the task's tolerance, checked against a
read-out whose answers are known, and absent for a task that states no tolerance."""
from __future__ import annotations

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.tasks import make_task
from diagnostics.training import train
from diagnostics.training.trainer import evaluate_all


def test_within_counts_answers_inside_the_tolerance():
    task = make_task("adding", length=30, variant="hochreiter1997")
    cell = make_cell("lstm", input_size=2, hidden=4)
    params = cell.init(np.random.default_rng(0))
    batch = task.sample(np.random.default_rng(1), 4000)
    always_half = {"V": np.zeros((1, 4)), "b_y": np.array([0.5])}     # the memoryless answer
    loss, acc, within = evaluate_all(cell, params, always_half, task, batch)
    y = batch.targets[-1, :, 0]
    assert within == np.mean(np.abs(y - 0.5) < 0.04) and acc is None
    assert 0.13 < within < 0.18          # P(|X1 + X2| / 4 < 0.04) = 0.154 for this task
    assert loss == np.mean((y - 0.5) ** 2)


def test_training_records_within_only_where_the_task_states_a_tolerance():
    add = make_task("adding", length=10)
    latch = make_task("latch", p=5)
    for task, expect in ((add, float), (latch, type(None))):
        cell = make_cell("rnn", input_size=task.input_size, hidden=4)
        r = train(cell, cell.init(np.random.default_rng(0)), task, steps=2, batch=4, eval_batch=64)
        assert isinstance(r.final_within, expect)
