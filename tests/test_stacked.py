"""The stacked cell (num_layers > 1): its Jacobian, vjp, input_vjp and backward against
derivatives taken from its step alone, for stacks mixing every built-in cell."""
import numpy as np
import pytest

from diagnostics.cells import check_jacobian, make_cell, reference_jacobian
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
def test_jacobian_vjp_input_vjp_backward(name):
    cell, params = build(name)
    rng = np.random.default_rng(1)
    B, S, d = 3, cell.state_size, cell.input_size
    state, x = rng.normal(scale=0.7, size=(B, S)), rng.normal(size=(B, d))
    chk = check_jacobian(cell, params, state, x, rtol=1e-10 if cell.analytic else 1e-6)
    assert chk.ok and chk.method == ("complex" if cell.analytic else "central"), chk
    new, cache = cell.step(params, state, x)
    J = cell.jacobian(params, cache)
    h = None if cell.analytic else 1e-3   # relu: piecewise linear, a large step only cuts rounding
    R, _ = reference_jacobian(cell, params, state, x, h=h)
    assert rel_err(J, R) <= 1e-10
    # the block lower-triangular structure: no layer reads a layer above it
    top = cell._slice(len(cell.layers) - 1)
    assert np.all(J[:, :top.start, top] == 0.0)
    # input Jacobian, one column of x at a time
    Jx = np.empty((B, S, d))
    for j in range(d):
        if cell.analytic:
            xx = x.astype(complex)
            xx[:, j] += 1e-30j
            Jx[:, :, j] = cell.step(params, state.astype(complex), xx)[0].imag / 1e-30
        else:
            xp, xm = x.copy(), x.copy()
            xp[:, j] += 1e-3
            xm[:, j] -= 1e-3
            Jx[:, :, j] = (cell.step(params, state, xp)[0] - cell.step(params, state, xm)[0]) / 2e-3
    for r in (1, 7, 2 * S):
        M = rng.normal(size=(B, r, S))
        assert rel_err(cell.vjp(params, cache, M), M @ J) <= 1e-12
        assert rel_err(cell.input_vjp(params, cache, M), M @ Jx) <= 1e-10
    g = rng.normal(size=(B, S))
    g_prev, grads, g_x = cell.backward(params, cache, g)
    assert rel_err(g_prev, np.einsum("bi,bij->bj", g, J)) <= 1e-12
    assert rel_err(g_x, np.einsum("bi,bij->bj", g, Jx)) <= 1e-10
    assert set(grads) == set(params)
    # parameter gradients: one entry of every parameter, by complex step (central for relu)
    for key, v in params.items():
        idx = tuple(i // 2 for i in v.shape)
        def loss(hh, dt):
            p = {k: a.astype(dt) for k, a in params.items()}
            p[key][idx] += hh
            return np.sum(g * cell.step(p, state.astype(dt), x.astype(dt))[0])
        ref = loss(1e-30j, complex).imag / 1e-30 if cell.analytic else (loss(1e-3, float) - loss(-1e-3, float)) / 2e-3
        assert abs(grads[key][idx] - ref) <= 1e-10 * max(1.0, abs(ref)), key


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
