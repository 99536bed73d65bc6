"""Tasks: layouts, option errors, stated baselines against empirical memoryless predictors,
and a short-lag smoke training per task."""
import numpy as np
import pytest

from diagnostics.cells import make_cell
from diagnostics.tasks import make_task, task_kinds, task_options
from diagnostics.training import train

TASKS = [("copy", {"delay": 20, "symbols": 5, "alphabet": 6}), ("adding", {"length": 50}),
         ("adding", {"length": 40, "variant": "hochreiter1997"}), ("temporal_order", {}),
         ("temporal_order", {"variant": "6b"}), ("latch", {"p": 30}), ("latch", {"p": 30, "noise": True}),
         ("tariff_shock", {}), ("tariff_shock", {"process": "random_walk", "length": 40, "lag": 15}),
         ("selective_copy", {"length": 24, "tokens": 3, "vocabulary": 6}), ("selective_copy", {}),
         ("mqar", {"length": 20, "pairs": 4, "queries": 3, "vocabulary": 6}),
         ("mqar", {"length": 12, "pairs": 2, "queries": 2, "vocabulary": 4}),
         ("induction", {"length": 16, "vocabulary": 5}), ("induction", {})]
IDS = [f"{k}-{o}" for k, o in TASKS]


def test_a_task_says_itself_in_a_sentence_and_a_cell_gives_its_options_as_data():
    """describe() returned a dict for cells and a sentence for tasks: one name, one meaning."""
    for kind in task_kinds():
        task = make_task(kind)
        assert isinstance(task.sentence(), str) and task.sentence() and not hasattr(task, "describe")
    cell = make_cell("lstm", input_size=2, hidden=3)
    assert cell.describe()["hidden"] == 3 and not hasattr(cell, "sentence")


def test_every_task_builds_from_its_defaults_and_samples_what_it_states():
    """task_options(kind) are the defaults its declaration validates to, and a task built from
    them samples batches of the length, input size and mask it states."""
    assert set(task_kinds()) >= {"copy", "adding", "temporal_order", "latch", "tariff_shock", "none",
                                 "selective_copy", "mqar", "induction"}
    for kind in task_kinds():
        task = make_task(kind)
        assert task.options() == task_options(kind) == make_task(kind, **task_options(kind)).options()
        b = task.sample(np.random.default_rng(0), 3)
        assert b.inputs.shape == (task.length, 3, task.input_size) and b.mask.shape == (task.length, 3)
        assert (b.targets is None) == (task.loss_kind is None) == (task.baseline is None)


@pytest.mark.parametrize("kind,opts,msg", [
    ("copy", {"delay": -3}, "delay: must be a positive integer, got -3"),
    ("copy", {"alphabet": 1}, "alphabet: must be >= 2, got 1"),
    ("copy", {"delay": True}, "delay: must be an integer, got True"),
    ("adding", {"variant": "x"}, "variant: must be one of urnn or hochreiter1997, got 'x'"),
    ("latch", {"noise": "yes"}, "noise: must be true or false"),
    ("latch", {"colour": 1}, "colour: unknown option of latch tasks"),
    ("tariff_shock", {"lag": 60}, "lag: must be smaller than length"),
    ("tariff_shock", {"reversion": 1.5}, "reversion: must be <= 0.999"),
    ("none", {"inputs": "ones"}, "inputs: must be one of zeros, gaussian or ar1, got 'ones'"),
    ("selective_copy", {"length": 7, "tokens": 4}, "length: must be >= 2 x tokens = 8, got 7"),
    ("selective_copy", {"vocabulary": 1}, "vocabulary: must be >= 2, got 1"),
    ("mqar", {"pairs": 9, "vocabulary": 8}, "pairs: must be <= vocabulary = 8, got 9"),
    ("mqar", {"pairs": 2, "queries": 3}, "queries: must be <= pairs = 2, got 3"),
    ("mqar", {"length": 9, "pairs": 4, "queries": 2}, "length: must be >= 2 x pairs plus queries = 10, got 9"),
    ("induction", {"vocabulary": 2}, "vocabulary: must be >= 3, got 2"),
    ("induction", {"length": 3}, "length: must be >= 4, got 3"),
    ("nope", {}, "task kind: must be one of"),
])
def test_bad_options_raise_one_line_errors(kind, opts, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        make_task(kind, **opts)


def test_copy_layout_and_reference_baselines():
    t = make_task("copy", delay=4, symbols=2, alphabet=3)
    b = t.sample(np.random.default_rng(0), 2)
    sym = b.inputs.argmax(-1)
    assert t.length == 8 and b.inputs.shape == (8, 2, 5) and b.mask.all()
    assert (sym[2:5] == 0).all() and (sym[5] == 4).all() and (sym[6:] == 0).all()
    assert (b.targets[:6] == 0).all() and (b.targets[6:] == sym[:2]).all()
    # REFERENCES.md item 10: T = 100, 200, 500 with 10 symbols of 8
    for T, ref in [(100, 0.17329), (200, 0.09452), (500, 0.03999)]:
        assert make_task("copy", delay=T).baseline == pytest.approx(ref, abs=5e-6)


def test_latch_and_temporal_order_layouts():
    b = make_task("latch", p=4).sample(np.random.default_rng(0), 6)
    sym = b.inputs.argmax(-1)
    assert (sym[1:].T == [2, 3, 4]).all() and (b.targets[-1] == sym[0]).all() and b.mask.sum() == 6
    t = make_task("temporal_order", variant="6b")
    assert t.windows == [(10, 20), (33, 43), (66, 76)] and t.output_size == 8
    b = t.sample(np.random.default_rng(1), 50)
    sym = b.inputs.argmax(-1)
    xy = [(np.nonzero((sym[:, i] == 2) | (sym[:, i] == 3))[0]) for i in range(50)]
    assert all(len(p) == 3 for p in xy)
    labels = [int("".join(str(sym[p, i] - 2) for p in xy[i]), 2) for i in range(50)]
    assert labels == list(b.targets[-1])


def test_selective_copy_layout():
    """K distinct positions in order among noise before the markers; the answers are the data
    tokens in the order they came, scored at the markers only."""
    t = make_task("selective_copy", length=12, tokens=3, vocabulary=5)
    b = t.sample(np.random.default_rng(0), 200)
    sym = b.inputs.argmax(-1)
    assert b.inputs.shape == (12, 200, 7) and t.output_size == 5 and t.lag == 9
    assert (sym[9:] == 6).all() and (b.mask[9:]).all() and not b.mask[:9].any()
    for i in range(200):
        data = sym[:9, i][sym[:9, i] > 0]
        assert len(data) == 3 and list(b.targets[9:, i]) == list(data - 1)
    starts = {int(np.nonzero(sym[:9, i])[0][0]) for i in range(200)}
    assert len(starts) > 3      # the positions vary from sequence to sequence: selectivity is needed


def test_mqar_layout():
    """Distinct keys, each value after its key; every query is one of the stored keys (distinct),
    answered with that key's value."""
    t = make_task("mqar", length=14, pairs=3, queries=2, vocabulary=5)
    b = t.sample(np.random.default_rng(1), 300)
    sym = b.inputs.argmax(-1)
    assert b.inputs.shape == (14, 300, 11) and t.output_size == 5
    assert (b.mask.sum(axis=0) == 2).all() and not b.mask[:6].any()
    for i in range(300):
        keys, vals = sym[0:6:2, i], sym[1:6:2, i]
        assert len(set(keys)) == 3 and (1 <= keys).all() and (keys <= 5).all() and (vals >= 6).all()
        binding = dict(zip(keys, vals - 6))
        q = np.nonzero(b.mask[:, i])[0]
        assert len(set(sym[q, i])) == 2 and all(b.targets[s, i] == binding[sym[s, i]] for s in q)
        assert (sym[6:, i][~b.mask[6:, i]] == 0).all()


def test_induction_layout():
    """A once in the first half followed by B != A, A again at the last step, nowhere else."""
    t = make_task("induction", length=10, vocabulary=4)
    b = t.sample(np.random.default_rng(2), 500)
    sym = b.inputs.argmax(-1)
    assert b.inputs.shape == (10, 500, 4) and b.mask[-1].all() and b.mask.sum() == 500
    for i in range(500):
        a = sym[-1, i]
        at = np.nonzero(sym[:-1, i] == a)[0]
        assert len(at) == 1 and at[0] < 5 and b.targets[-1, i] == sym[at[0] + 1, i] != a


def test_none_task():
    t = make_task("none", length=7, input_size=3, inputs="zeros")
    b = t.sample(np.random.default_rng(0), 4)
    assert b.inputs.shape == (7, 4, 3) and not b.inputs.any() and b.targets is None
    assert t.loss_kind is None and t.baseline is None and not b.mask.any()
    g = make_task("none", length=2000, input_size=1, scale=0.5).sample(np.random.default_rng(0), 50)
    assert g.inputs.std() == pytest.approx(0.5, rel=0.02)


def empirical_memoryless_loss(task, batch, memory=3):
    """Best predictor that sees the step index and the last `memory` inputs only.

    Classification: per (step, current input) class frequencies (plug-in). Regression: least
    squares on [1, x_t, x_{t-1}, ..., x_{t-memory+1}] pooled over the scored steps."""
    tm, bm = np.nonzero(batch.mask)
    if task.loss_kind == "xent":
        sym = batch.inputs.argmax(-1)
        keys = tm * task.input_size + sym[tm, bm]
        y = batch.targets[tm, bm]
        table = np.zeros((keys.max() + 1, task.output_size))
        np.add.at(table, (keys, y), 1.0)
        p = table / np.maximum(table.sum(axis=1, keepdims=True), 1.0)  # unseen keys: unused rows
        return float(-np.log(p[keys, y]).mean())
    feats = [np.ones(len(tm))]
    for lag in range(memory):
        ok = tm - lag >= 0
        for ch in range(task.input_size):
            feats.append(np.where(ok, batch.inputs[np.maximum(tm - lag, 0), bm, ch], 0.0))
    X = np.stack(feats, axis=1)
    y = batch.targets[tm, bm, 0]
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(((X @ coef - y) ** 2).mean())


@pytest.mark.parametrize("kind,opts", TASKS, ids=IDS)
def test_stated_baseline_matches_empirical_memoryless_predictor(kind, opts):
    task = make_task(kind, **opts)
    B = 60000 if task.length * 60000 < 5e6 else 20000
    batch = task.sample(np.random.default_rng(11), B)
    emp = empirical_memoryless_loss(task, batch)
    assert emp == pytest.approx(task.baseline, rel=0.02), (emp, task.baseline)


@pytest.mark.parametrize("process", ["mean_reverting", "random_walk"])
def test_tariff_news_memory_reaches_noise_floor(process):
    """The jump is predictable from the news L - 1 steps back: with it the loss is σ²."""
    task = make_task("tariff_shock", length=30, lag=8, process=process)
    b = task.sample(np.random.default_rng(2), 20000)
    tm, bm = np.nonzero(b.mask)
    L = task.opts["lag"]
    phi = task.opts["reversion"] if process == "mean_reverting" else 1.0
    pred = (phi - 1.0) * b.inputs[tm, bm, 0] + b.inputs[tm - (L - 1), bm, 1]
    mse = ((pred - b.targets[tm, bm, 0]) ** 2).mean()
    assert mse == pytest.approx(task.noise_floor, rel=0.02)
    assert task.baseline == pytest.approx(0.01 + 1.0 / 22)


SMOKE = [("copy", {"delay": 3, "symbols": 2, "alphabet": 3}), ("adding", {"length": 8}),
         ("adding", {"length": 24, "variant": "hochreiter1997"}), ("temporal_order", {"length": 12}),
         ("latch", {"p": 5}), ("tariff_shock", {"length": 12, "lag": 4}),
         ("selective_copy", {"length": 6, "tokens": 2, "vocabulary": 3}),
         ("mqar", {"length": 6, "pairs": 2, "queries": 2, "vocabulary": 3}), ("induction", {"length": 5, "vocabulary": 3})]


@pytest.mark.parametrize("kind,opts", SMOKE, ids=[f"{k}-{o}" for k, o in SMOKE])
def test_smoke_training_beats_baseline_at_short_lag(kind, opts):
    task = make_task(kind, **opts)
    cell = make_cell("lstm", input_size=task.input_size, hidden=16)
    r = train(cell, cell.init(np.random.default_rng(0)), task, steps=200, batch=32,
              optimizer={"kind": "adam", "lr": 1e-2}, clip=5.0)
    assert r.diverged_at is None and r.final_loss < 0.5 * task.baseline, (r.final_loss, task.baseline)
