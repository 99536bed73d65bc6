"""The torch-function cell: a step written in PyTorch, differentiated by torch.func, agrees
with the built-in analytic cell on the same weights (curves to 1e-10 in log10), and
check_jacobian passes on it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from diagnostics.cells import check_cell, check_jacobian, make_cell  # noqa: E402
from diagnostics.cells.torchfn import TorchFn, module_cell  # noqa: E402
from diagnostics.interop.torch import from_module  # noqa: E402
from diagnostics.probing.core import probe  # noqa: E402

N, D, T, B = 6, 3, 40, 4


def lstm_step(p, s, x):
    """A user's LSTM written in torch (gates u, f, c, o stacked like the built-in cell)."""
    n = s.shape[1] // 2
    a, c = s[:, :n], s[:, n:]
    z = a @ p["W"].T + x @ p["U"].T + p["b"]
    u, f, g, o = torch.sigmoid(z[:, :n]), torch.sigmoid(z[:, n:2 * n]), torch.tanh(z[:, 2 * n:3 * n]), torch.sigmoid(z[:, 3 * n:])
    c = u * g + f * c
    return torch.cat([o * torch.tanh(c), c], dim=1)


def curves_agree(r1, r2, tol=1e-10):
    worst = 0.0
    for key in r1.log10:
        a, b = r1.log10[key], r2.log10[key]
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), key
        worst = max(worst, float(np.abs(a - b)[np.isfinite(a)].max()))
    assert worst <= tol, worst
    return worst


def test_torch_lstm_step_equals_builtin_lstm():
    ref = make_cell("lstm", input_size=D, hidden=N, forget_bias=1.0)
    params = ref.init(np.random.default_rng(0))
    cell = TorchFn(lstm_step, input_size=D, hidden=N, state_blocks=("a", "c"))
    assert cell.paths == ("a", "c", "state") and cell.state_size == 2 * N
    xs = np.random.default_rng(1).normal(size=(T, B, D))
    paths = ["a", "c", "state"]
    curves_agree(probe(cell, params, xs, paths=paths), probe(ref, params, xs, paths=paths, workers=1))
    rng = np.random.default_rng(2)
    state, x = rng.normal(scale=0.7, size=(B, 2 * N)), rng.normal(size=(B, D))
    chk = check_jacobian(cell, params, state, x)
    assert chk.ok and chk.method == "central", chk
    new, cache = cell.step(params, state, x)
    new_ref, cache_ref = ref.step(params, state, x)
    np.testing.assert_allclose(new, new_ref, rtol=0, atol=1e-15)
    J = cell.jacobian(params, cache)
    np.testing.assert_allclose(J, ref.jacobian(params, cache_ref), rtol=0, atol=1e-14)
    M = rng.normal(size=(B, 5, 2 * N))
    np.testing.assert_allclose(cell.vjp(params, cache, M), M @ J, rtol=0, atol=1e-13)
    np.testing.assert_allclose(cell.input_vjp(params, cache, M), ref.input_vjp(params, cache_ref, M), rtol=0, atol=1e-13)


@pytest.mark.parametrize("ctor", [torch.nn.GRUCell, torch.nn.LSTMCell, torch.nn.RNNCell])
@pytest.mark.slow
def test_module_cell_equals_the_imported_cell(ctor):
    torch.manual_seed(0)
    m = ctor(D, N)
    cell, params = module_cell(m)
    imp = from_module(m)
    xs = np.random.default_rng(3).normal(size=(T, B, D))
    curves_agree(probe(cell, params, xs), probe(imp.cell, imp.params, xs, paths=list(cell.paths), workers=1))
    rng = np.random.default_rng(4)
    assert check_jacobian(cell, params, rng.normal(size=(B, cell.state_size)), rng.normal(size=(B, D))).ok
    res = check_cell(cell, params)      # the whole contract: no backward, so no training
    assert res.ok and res.passed == ("step", "jacobian", "vjp", "input_vjp"), str(res)


def test_check_jacobian_catches_a_wrong_pullback():
    """check_jacobian compares torch.func's Jacobian with differences of step: a step whose
    derivative torch cannot see (a value detached from the graph) fails it."""
    ref = make_cell("rnn", input_size=D, hidden=N)
    params = ref.init(np.random.default_rng(0))

    def hidden_from_autograd(p, s, x):
        return torch.tanh(s.detach() @ p["W_a"].T + x @ p["U_a"].T + p["b_a"])

    cell = TorchFn(hidden_from_autograd, input_size=D, hidden=N)
    rng = np.random.default_rng(5)
    chk = check_jacobian(cell, params, rng.normal(size=(B, N)), rng.normal(size=(B, D)))
    assert not chk.ok and chk.max_rel_error > 0.1
    assert check_cell(cell, params).failures == (   # vjp agrees with its jacobian: one line, jacobian's
        "jacobian: max relative error 1.0e+00 against central differences of step (tolerance 1e-06)",)


def test_bad_options_name_themselves():
    with pytest.raises(ValueError, match="^fn: must be a torch step function"):
        TorchFn(None, input_size=2, hidden=3)
    with pytest.raises(ValueError, match="^state_blocks: must name distinct blocks, 'a' among them"):
        TorchFn(lstm_step, input_size=2, hidden=3, state_blocks=("c",))
    with pytest.raises(ValueError, match="^hidden: must be a positive integer"):
        TorchFn(lstm_step, input_size=2, hidden=0)
