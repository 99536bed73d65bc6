"""The trainer's numbers are true: BPTT gradients against complex-step / central differences,
temporal components against the full gradient, optimisers against their textbook updates."""
import numpy as np
import pytest

from diagnostics.cells import LSTM, make_cell
from diagnostics.cells.stacked import Stacked
from diagnostics.tasks import Batch, make_task
from diagnostics.training import (
    clip_,
    full_loss,
    global_norm,
    init_readout,
    loss_and_grads,
    make_optimizer,
    recurrent_names,
    temporal_components,
    train,
)

CELL_OPTIONS = [
    ("rnn", {"activation": "tanh"}), ("rnn", {"activation": "relu"}), ("rnn", {"activation": "linear"}),
    ("gru", {"reset_gate": True}), ("gru", {"reset_gate": False}), ("gru", {"reset_after": True, "bias": 0.2}),
    ("lstm", {}), ("lstm", {"forget_gate": False}), ("lstm", {"output_tanh": False}),
    ("lstm", {"forget_gate": False, "output_tanh": False}), ("lstm", {"chrono": 10}),
    ("indrnn", {"activation": "relu", "recurrent_min": -1.0}), ("indrnn", {"activation": "tanh"}),
    ("lru", {}), ("lru", {"normalize": False, "r_min": 0.3, "r_max": 0.8}),
    ("mingru", {"update_bias": -1.0}), ("minlstm", {}),
    ("cornn", {"dt": 0.2}), ("slstm", {}), ("slstm", {"forget": "exp"}),
]
T, B, D, N = 5, 3, 2, 3


def tiny_batch(loss_kind, rng):
    x = rng.standard_normal((T, B, D))
    mask = rng.random((T, B)) < 0.6
    mask[-1] = True
    if loss_kind == "xent":
        return Batch(x, rng.integers(0, 3, size=(T, B)), mask), 3
    return Batch(x, rng.standard_normal((T, B, 2)), mask), 2


def reference_grads(cell, params, ro, batch, loss_kind):
    """Derivative of the loss from the forward pass alone, one parameter entry at a time."""
    out = {}
    for group, name in [("cell", k) for k in params] + [("ro", k) for k in ro]:
        src = params if group == "cell" else ro
        g = np.empty(src[name].shape)
        for idx in np.ndindex(src[name].shape):
            def loss_at(delta, dtype):
                p = {k: np.array(v, dtype=dtype) for k, v in params.items()}
                r = {k: np.array(v, dtype=dtype) for k, v in ro.items()}
                (p if group == "cell" else r)[name][idx] += delta
                return full_loss(cell, p, r, batch, loss_kind)
            if cell.analytic:
                h = 1e-30
                g[idx] = loss_at(1j * h, np.complex128).imag / h
            else:  # relu: not analytic, so central differences (piecewise linear: tiny error)
                h = 1e-6
                g[idx] = (loss_at(h, np.float64) - loss_at(-h, np.float64)) / (2 * h)
        out[name] = g
    return out


@pytest.mark.parametrize("loss_kind", ["xent", "mse"])
@pytest.mark.parametrize("kind,opts", CELL_OPTIONS, ids=[f"{k}-{o}" for k, o in CELL_OPTIONS])
def test_bptt_matches_finite_step(kind, opts, loss_kind):
    rng = np.random.default_rng(7)
    cell = make_cell(kind, input_size=D, hidden=N, **opts)
    params = cell.init(rng)
    batch, outputs = tiny_batch(loss_kind, rng)
    ro = init_readout(rng, cell.readout_size, outputs)   # the LRU reads [Re x; Im x]: 2N
    ro["b_y"] = rng.standard_normal(outputs)
    got = loss_and_grads(cell, params, ro, batch, loss_kind)
    ref = reference_grads(cell, params, ro, batch, loss_kind)
    assert set(got.grads) == set(ref)
    flat_got = np.concatenate([got.grads[k].ravel() for k in sorted(ref)])
    flat_ref = np.concatenate([ref[k].ravel() for k in sorted(ref)])
    assert np.abs(flat_got - flat_ref).max() <= 1e-8 * np.abs(flat_ref).max()
    assert got.loss == pytest.approx(float(full_loss(cell, params, ro, batch, loss_kind)), rel=1e-14)


@pytest.mark.parametrize("kind,opts", CELL_OPTIONS, ids=[f"{k}-{o}" for k, o in CELL_OPTIONS])
def test_temporal_components_sum_to_gradient(kind, opts):
    rng = np.random.default_rng(3)
    task = make_task("tariff_shock", length=12, lag=4)
    cell = make_cell(kind, input_size=task.input_size, hidden=4, **opts)
    params = cell.init(rng)
    batch = task.sample(rng, 5)
    out = loss_and_grads(cell, params, init_readout(rng, cell.readout_size, 1), batch, "mse")
    lags, comps = temporal_components(cell, params, out)
    names = cell.recurrent_names(params)
    full = np.concatenate([out.grads[k].ravel() for k in names])
    assert list(lags) == list(range(task.length)) and comps.shape == (task.length, full.size)
    assert np.linalg.norm(comps.sum(axis=0) - full) <= 1e-10 * np.linalg.norm(full)
    assert np.linalg.norm(comps[0]) > 0  # the immediate term is there


def test_recurrent_names():
    assert recurrent_names(make_cell("rnn", input_size=1, hidden=2).init(np.random.default_rng(0))) == ["W_a"]


def _setup(kind="rnn", task=None, **opts):
    task = task or make_task("latch", p=5)
    cell = make_cell(kind, input_size=task.input_size, hidden=8, **opts)
    return cell, cell.init(np.random.default_rng(0)), task


def test_deterministic_bit_for_bit():
    cell, params, task = _setup()
    r1 = train(cell, params, task, steps=20, batch=8, seed=5, checkpoints=[0, 20])
    r2 = train(cell, params, task, steps=20, batch=8, seed=5, checkpoints=[0, 20])
    assert r1.loss == r2.loss and r1.grad_norm == r2.grad_norm and r1.final_loss == r2.final_loss
    for k in params:
        assert np.array_equal(r1.checkpoint_params[20][k], r2.checkpoint_params[20][k])
    assert np.array_equal(r1.checkpoint_params[0]["W_a"], params["W_a"])
    r3 = train(cell, params, task, steps=20, batch=8, seed=6)
    assert r3.loss != r1.loss


def test_result_shapes_and_records():
    cell, params, task = _setup()
    r = train(cell, params, task, steps=10, batch=4, checkpoints=[0, 5, 10], track=[0, 10])
    assert r.steps == list(range(11)) and len(r.loss) == len(r.grad_norm) == 11
    assert sorted(r.checkpoint_params) == [0, 5, 10] and sorted(r.grad_flow) == [0, 10]
    t, flow = r.grad_flow[10]
    assert list(t) == list(range(1, task.length + 1)) and flow.shape == (task.length,)
    lags, comp = r.temporal_components[0]
    assert comp.shape == lags.shape == (task.length,)
    assert r.baseline == task.baseline and r.diverged_at is None and r.loss_kind == "xent"
    assert all(np.array_equal(r.checkpoint_params[0][k], params[k]) for k in params)   # step 0: initial
    assert not all(np.array_equal(r.checkpoint_params[10][k], params[k]) for k in params)


@pytest.mark.parametrize("kind,opts", CELL_OPTIONS, ids=[f"{k}-{o}" for k, o in CELL_OPTIONS])
def test_float32_stays_float32(kind, opts):
    seen = []
    cell, params, task = _setup(kind, **opts)
    r = train(cell, params, task, steps=3, batch=4, dtype="float32", track=[0, 2],
              callbacks=[lambda info: seen.append((info.out.trace, {v.dtype for v in info.out.grads.values()}))])
    assert all(g == {np.dtype(np.float32)} for _, g in seen), seen
    traced = [tr for tr, _ in seen if tr is not None]  # tracked steps run the cell's own step
    assert len(traced) >= 2 and all(tr.states.dtype == np.float32 for tr in traced)
    assert np.isfinite(r.final_loss)
    assert all(v.dtype == np.float64 for v in r.checkpoint_params[0].values())


def test_divergence_is_a_result():
    cell, params, task = _setup("rnn", make_task("adding", length=30), activation="linear",
                                recurrent_init={"kind": "orthogonal", "gain": 2.0})
    r = train(cell, params, task, steps=50, batch=4, optimizer={"kind": "sgd", "lr": 1e6})
    assert r.diverged_at is not None and 0 < r.diverged_at <= 50
    assert len(r.loss) == r.diverged_at and np.all(np.isfinite(r.loss))
    assert np.isfinite(r.final_loss)  # evaluated at the last parameters with a finite step


def test_none_task_cannot_be_trained():
    task = make_task("none", length=5, input_size=2)
    cell = make_cell("rnn", input_size=2, hidden=3)
    with pytest.raises(ValueError, match="cannot be trained"):
        train(cell, cell.init(np.random.default_rng(0)), task, steps=1, batch=2)


@pytest.mark.parametrize("bad,match", [
    (dict(steps=-1), "steps"), (dict(batch=0), "batch"), (dict(dtype="float16"), "dtype"),
    (dict(clip=-1.0), "clip"), (dict(checkpoints=[0, 99]), "checkpoints"),
    (dict(optimizer={"kind": "rmsprop"}), "optimizer.kind"), (dict(optimizer={"kind": "sgd", "beta1": 0.9}), "optimizer.beta1"),
])
def test_bad_arguments_name_themselves(bad, match):
    cell, params, task = _setup()
    kw = dict(steps=5, batch=2) | bad
    with pytest.raises(ValueError, match=match):
        train(cell, params, task, **kw)


def test_adam_and_sgd_match_textbook():
    rng = np.random.default_rng(0)
    p0, gs = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    p = {"w": p0.copy()}
    opt = make_optimizer({"kind": "adam", "lr": 0.1}, p)
    m = v = np.zeros(4)
    ref = p0.copy()
    for t, g in enumerate(gs, 1):
        opt.update(p, {"w": g.copy()})
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        ref = ref - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    assert np.allclose(p["w"], ref, rtol=1e-13, atol=1e-15)
    p = {"w": p0.copy()}
    opt = make_optimizer({"kind": "sgd", "lr": 0.1, "momentum": 0.9}, p)
    vel, ref = np.zeros(4), p0.copy()
    for g in gs:
        opt.update(p, {"w": g.copy()})
        vel = 0.9 * vel + g
        ref = ref - 0.1 * vel
    assert np.allclose(p["w"], ref, rtol=1e-14)


def test_adam_betas_must_be_below_one_from_python_too():
    from diagnostics.training.optim import make_optimizer
    with pytest.raises(ValueError, match="optimizer.beta1: must be < 1, got 1.0"):
        make_optimizer({"kind": "adam", "beta1": 1.0}, {"w": np.zeros(2)})


def test_clipping_is_pascanu_algorithm_1():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    n = global_norm(g)
    assert n == 5.0 and clip_(g, 1.0, n) and global_norm(g) == pytest.approx(1.0, rel=1e-15)
    g2 = {"a": np.array([0.3])}
    assert not clip_(g2, 1.0, global_norm(g2)) and g2["a"][0] == 0.3


LSTM_OPTIONS = [{}, {"forget_gate": False}, {"output_tanh": False}, {"forget_gate": False, "output_tanh": False}]


@pytest.mark.parametrize("opts", LSTM_OPTIONS, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_lstm_equals_cell_bptt(opts, dtype):
    from diagnostics.training.fused_lstm import FusedLSTM
    rng = np.random.default_rng(4)
    for task in (make_task("tariff_shock", length=15, lag=4), make_task("latch", p=6)):
        cell = make_cell("lstm", input_size=task.input_size, hidden=5, **opts)
        p = {k: v.astype(dtype) for k, v in cell.init(rng).items()}
        ro = init_readout(rng, 5, task.output_size, dtype)
        b = task.sample(rng, 4)
        b = b._replace(inputs=b.inputs.astype(dtype))
        ref = loss_and_grads(cell, p, ro, b, task.loss_kind)
        fused = FusedLSTM(cell)
        for _ in range(2):  # the second call reuses the buffers
            got = fused.loss_and_grads(p, ro, b, task.loss_kind)
        tol = 1e-12 if dtype == np.float64 else 1e-4
        assert got.loss == pytest.approx(ref.loss, rel=tol)
        for k in ref.grads:
            assert got.grads[k].dtype == dtype
            assert np.abs(got.grads[k] - ref.grads[k]).max() <= tol * np.abs(ref.grads[k]).max()
        assert np.allclose(got.flow, ref.flow, rtol=tol)


def test_fused_and_generic_training_agree():
    task = make_task("latch", p=6)
    cell = make_cell("lstm", input_size=task.input_size, hidden=6)
    p = cell.init(np.random.default_rng(0))
    r1 = train(cell, p, task, steps=15, batch=4, checkpoints=[0, 15])
    r2 = train(cell, p, task, steps=15, batch=4, checkpoints=[0, 15], fused=False)
    assert np.allclose(r1.loss, r2.loss, rtol=1e-10)
    assert np.allclose(r1.checkpoint_params[15]["W"], r2.checkpoint_params[15]["W"], rtol=1e-8, atol=1e-12)


class _DoubledInputLSTM(LSTM):
    """A user's LSTM with equations of its own (it reads its input doubled); kind is still
    "lstm", inherited."""

    def step(self, params, state, x):
        return super().step(params, state, 2.0 * x)

    def backward(self, params, cache, g):
        g_prev, grads, g_x = super().backward(params, cache, g)
        return g_prev, grads, 2.0 * g_x


def test_a_subclass_of_the_lstm_trains_with_its_own_equations():
    """The fused fast path is the stock LSTM's equations: a subclass must not take it (it did,
    on every untracked step: here the loss after one step was 0.6719 against 0.7091 unfused,
    after five 0.6774 against 0.6781)."""
    from diagnostics.training.fused_lstm import supports
    task = make_task("latch", p=6)
    cell = _DoubledInputLSTM(input_size=task.input_size, hidden=6)
    p = cell.init(np.random.default_rng(0))
    r1 = train(cell, p, task, steps=5, batch=4, checkpoints=[0, 5])
    r2 = train(cell, p, task, steps=5, batch=4, checkpoints=[0, 5], fused=False)
    np.testing.assert_allclose(r1.loss, r2.loss, rtol=1e-12, atol=0)
    for k in p:
        np.testing.assert_allclose(r1.checkpoint_params[5][k], r2.checkpoint_params[5][k], rtol=0, atol=1e-12)
    assert cell.kind == "lstm" and not supports(cell) and supports(make_cell("lstm", input_size=1, hidden=2))


# each token task through a 2-layer stack of the selective-tasks study's cells (every cell once)
TOKEN_CASES = [("selective_copy", {"length": 6, "tokens": 2, "vocabulary": 3},
                (("mamba", {"d_state": 2}), ("gated_deltanet", {"heads": 1, "head_dim": 2}))),
               ("mqar", {"length": 6, "pairs": 2, "queries": 2, "vocabulary": 3},
                (("mamba2", {"d_state": 2, "heads": 2}), ("mlstm", {"heads": 2}))),
               ("induction", {"length": 5, "vocabulary": 3}, (("lstm", {}), ("gru", {}))),
               ("selective_copy", {"length": 5, "tokens": 2, "vocabulary": 2}, (("rglru", {"heads": 2}), ("lstm", {})))]


@pytest.mark.parametrize("kind,opts,layers", TOKEN_CASES,
                         ids=[f"{k}-{'-'.join(c for c, _ in ls)}" for k, _, ls in TOKEN_CASES])
def test_bptt_on_the_token_tasks_matches_complex_step(kind, opts, layers):
    """The classification read-out and loss of the token tasks (one-hot inputs, several scored
    steps per sequence for selective_copy and mqar, the last step for induction), back-propagated
    through 2-layer stacks of the cells of the selective-tasks study, against the complex step."""
    rng = np.random.default_rng(5)
    task = make_task(kind, **opts)
    cells, inp = [], task.input_size
    for k, o in layers:
        c = make_cell(k, input_size=inp, hidden=4, **o)
        cells.append(c)
        inp = c.readout_size
    cell = Stacked(tuple(cells))
    params = cell.init(rng)
    batch = task.sample(rng, 3)
    ro = init_readout(rng, cell.readout_size, task.output_size)
    ro["b_y"] = rng.standard_normal(task.output_size)
    got = loss_and_grads(cell, params, ro, batch, task.loss_kind)
    ref = reference_grads(cell, params, ro, batch, task.loss_kind)
    flat_got = np.concatenate([got.grads[k].ravel() for k in sorted(ref)])
    flat_ref = np.concatenate([ref[k].ravel() for k in sorted(ref)])
    assert np.abs(flat_got - flat_ref).max() <= 1e-8 * np.abs(flat_ref).max()
    assert got.loss == pytest.approx(float(full_loss(cell, params, ro, batch, task.loss_kind)), rel=1e-14)
