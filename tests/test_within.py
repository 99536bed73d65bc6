"""The per-sequence `within` measure the trainer records (the 1997 adding paper's success
count): the fraction of evaluation answers within the task's tolerance, checked against a
read-out whose answers are known, and absent for a task that states no tolerance."""
from __future__ import annotations

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.sweep.schema import WithinAtLeast
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


def test_within_of_a_token_task_counts_sequences_with_every_answer_right():
    """selective_copy and mqar state no tolerance but `sequence_exact`: `within` is the fraction
    of sequences whose every scored answer is the read-out's argmax, checked against a read-out
    that always answers class 0 (right exactly where every target of the sequence is 0)."""
    for task in (make_task("selective_copy", length=8, tokens=2, vocabulary=3),
                 make_task("mqar", length=9, pairs=3, queries=2, vocabulary=3)):
        cell = make_cell("gru", input_size=task.input_size, hidden=4)
        params = cell.init(np.random.default_rng(0))
        batch = task.sample(np.random.default_rng(1), 3000)
        class0 = {"V": np.zeros((task.output_size, 4)), "b_y": np.eye(task.output_size)[0]}
        loss, acc, within = evaluate_all(cell, params, class0, task, batch)
        all_zero = np.all(np.where(batch.mask, batch.targets, 0) == 0, axis=0)
        assert within == all_zero.mean() and acc == (batch.targets[batch.mask] == 0).mean()
        assert abs(within - (1 / 3) ** 2) < 0.03      # two answers, each 0 with probability 1/3
    induction = make_task("induction", length=6)       # one answer: accuracy says it all
    cell = make_cell("gru", input_size=induction.input_size, hidden=4)
    r = train(cell, cell.init(np.random.default_rng(0)), induction, steps=1, batch=4, eval_batch=16)
    assert r.final_within is None and r.final_accuracy is not None


def test_a_sweep_may_ask_for_within_on_a_token_task():
    rule = WithinAtLeast(kind="within_at_least", value=0.9)
    assert rule.problem(make_task("mqar")) is None and rule.problem(make_task("selective_copy")) is None
    assert "states none" in rule.problem(make_task("induction"))
