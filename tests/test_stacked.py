"""The stacked cell (num_layers > 1): its Jacobian, vjp, input_vjp and backward against
derivatives taken from its step alone, for stacks mixing every built-in cell."""
import numpy as np
import pytest

from diagnostics.cells import check_cell, make_cell, reference_jacobian
from diagnostics.cells.checks import reference_input_jacobian, reference_param_jacobians
from diagnostics.cells.stacked import Stacked
from diagnostics.probing.core import probe

STACKS = {
    "lstm2": [("lstm", {}), ("lstm", {"forget_bias": 0.5})],
    "gru3": [("gru", {"reset_after": True}), ("gru", {}), ("gru", {"reset_after": True})],
    "rnn-lstm-gru": [("rnn", {"activation": "tanh"}), ("lstm", {"output_tanh": False}), ("gru", {})],
    "relu2": [("rnn", {"activation": "relu"}), ("rnn", {"activation": "relu"})],
}


def build(name, d=3, sizes=(4, 3, 5), seed=0):
    cells, inp = [], d
    for (kind, opts), n in zip(STACKS[name], sizes):
        cells.append(make_cell(kind, input_size=inp, hidden=n, **opts))
        inp = n
    cell = Stacked(tuple(cells))
    return cell, cell.init(np.random.default_rng(seed))


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_passes_every_check(name):
    cell, params = build(name)
    res = check_cell(cell, params, rng=np.random.default_rng(1))
    assert res.ok, str(res)
    assert {o.check for o in res.outcomes if o.status == "skipped"} <= {"log_diagonal"}, str(res)
    # the block lower-triangular structure: no layer reads a layer above it
    rng = np.random.default_rng(1)
    B, S, d = 3, cell.state_size, cell.input_size
    state, x = rng.normal(scale=0.7, size=(B, S)), rng.normal(size=(B, d))
    _, cache = cell.step(params, state, x)
    J = cell.jacobian(params, cache)
    top = cell._slice(len(cell.layers) - 1)
    assert np.all(J[:, :top.start, top] == 0.0)
    if not cell.analytic:   # relu: piecewise linear, so central differences at a large h are exact
        assert rel_err(J, reference_jacobian(cell, params, state, x, h=1e-3)[0]) <= 1e-10
        Jx = reference_input_jacobian(cell, params, state, x, h=1e-3)
        M = rng.normal(size=(B, 7, S))
        assert rel_err(cell.input_vjp(params, cache, M), M @ Jx) <= 1e-10
        g = rng.normal(size=(B, S))
        _, grads, g_x = cell.backward(params, cache, g)
        assert rel_err(g_x, np.einsum("bi,bij->bj", g, Jx)) <= 1e-10
        for key, Jp in reference_param_jacobians(cell, params, state, x, h=1e-3).items():
            assert rel_err(grads[key], np.einsum("bi,bi...->...", g, Jp)) <= 1e-10, key


def test_layout_paths_and_probe():
    cell, params = build("lstm2", sizes=(4, 3))
    assert cell.state_size == 2 * 4 + 2 * 3 and cell.hidden == 3 and cell.input_size == 3
    assert cell.blocks["a"] == cell.blocks["l1.a"] == slice(8, 11)
    assert cell.blocks["c"] == slice(11, 14) and cell.blocks["l0.c"] == slice(4, 8)
    assert cell.paths == ("a", "c", "c_direct", "state", "l0.a", "l0.c", "l1.a", "l1.c")
    assert cell.parallel_safe and cell.describe()["layers"][1]["forget_bias"] == 0.5
    xs = np.random.default_rng(2).normal(size=(12, 2, 3))
    res = probe(cell, params, xs, lags=10, workers=1)
    # a diagonal block of the block-triangular product is that layer's own product: layer 0
    # probed alone gives the same curve
    alone = probe(cell.layers[0], cell.layer_params(params, 0), xs, lags=10, paths=["a", "c"], workers=1)
    for p in ("a", "c"):
        d = np.abs(res.log10[(f"l0.{p}", "spectral")] - alone.log10[(p, "spectral")]).max()
        assert d <= 1e-10, (p, d)
    np.testing.assert_array_equal(res.log10[("a", "frobenius")], res.log10[("l1.a", "frobenius")])
    # fewer paths carry only their blocks' rows (the top layer's 2n, or blocks apart): same curves
    for paths in (["a", "c"], ["l0.a", "c"]):
        part = probe(cell, params, xs, lags=10, paths=paths, workers=1)
        for key, v in part.log10.items():
            assert np.abs(v - res.log10[key]).max() <= 1e-12, key


def test_bad_stacks_name_the_problem():
    a = make_cell("lstm", input_size=2, hidden=4)
    b = make_cell("gru", input_size=5, hidden=3)
    with pytest.raises(ValueError, match="^layers: layer 1 reads layer 0's a<t> of size 4, but its input_size is 5$"):
        Stacked((a, b))
    with pytest.raises(ValueError, match="^layers: must be a non-empty tuple of cells"):
        Stacked(())


@pytest.mark.parametrize("top", ["lstm", "slstm"])
def test_the_top_layers_direct_memory_path_is_the_stacks(top):
    """c_direct of a stack is its top layer's, whichever hook the top layer declares it with
    (the LSTM's direct_memory_log, the sLSTM's log_diagonal): the same curve as the layer
    probed alone on the inputs the layer below gives it."""
    from diagnostics.cells.unroll import unroll
    cells = (make_cell("rnn", input_size=3, hidden=4), make_cell(top, input_size=4, hidden=4))
    cell = Stacked(cells)
    params = cell.init(np.random.default_rng(0))
    assert "c_direct" in cell.paths
    xs = np.random.default_rng(1).normal(size=(12, 2, 3))
    res = probe(cell, params, xs, lags=8, workers=1)
    below = unroll(cells[0], cell.layer_params(params, 0), xs).states[:, :, cells[0].blocks["a"]]
    alone = probe(cells[1], cell.layer_params(params, 1), below, lags=8, paths=["c_direct"], workers=1)
    for norm in ("spectral", "frobenius"):
        np.testing.assert_array_equal(res.log10[("c_direct", norm)], alone.log10[("c_direct", norm)])
