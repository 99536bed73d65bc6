"""PyTorch modules and weight files into the probe (issue 13): for every supported module type
and option, the probe's curves for every path equal curves from autograd through the torch
module itself (tests/torch_reference.py) to 1e-9 in log10, and the forward states equal the
module's own to 1e-12."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_reference import (  # noqa: E402
    StepRef,
    kind_of,
    layer_module,
    lower_outputs,
    reference_curves,
)

from diagnostics.interop.torch import from_module, module_inputs  # noqa: E402
from diagnostics.probing.core import probe  # noqa: E402
from diagnostics.weights import Imported, load_weights, read_inputs  # noqa: E402

D, H, T, B = 3, 5, 12, 3
nn = torch.nn


def make(ctor, seed=0, **kw):
    torch.manual_seed(seed)
    return ctor(D, H, **kw).double()


MODULES = {
    "rnn-tanh": lambda: make(nn.RNN), "rnn-relu": lambda: make(nn.RNN, nonlinearity="relu"),
    "rnn-tanh-nobias": lambda: make(nn.RNN, bias=False),
    "rnn-relu-nobias": lambda: make(nn.RNN, nonlinearity="relu", bias=False),
    "lstm": lambda: make(nn.LSTM), "lstm-nobias": lambda: make(nn.LSTM, bias=False),
    "gru": lambda: make(nn.GRU), "gru-nobias": lambda: make(nn.GRU, bias=False),
    "rnncell-tanh": lambda: make(nn.RNNCell), "rnncell-relu": lambda: make(nn.RNNCell, nonlinearity="relu"),
    "lstmcell": lambda: make(nn.LSTMCell), "grucell": lambda: make(nn.GRUCell),
    "grucell-nobias": lambda: make(nn.GRUCell, bias=False),
}
# (module, layer, direction)
STACKS = [(f"{k}2", lambda c=c, kw=kw: make(c, num_layers=2, **kw), layer, None)
          for k, c, kw in (("rnn", nn.RNN, {}), ("rnn-relu", nn.RNN, {"nonlinearity": "relu"}),
                           ("lstm", nn.LSTM, {}), ("gru", nn.GRU, {}))
          for layer in ("all", 1)]
BIDIR = [(f"{k}-bi{L}", lambda c=c, L=L: make(c, num_layers=L, bidirectional=True), layer, direction)
         for k, c in (("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU))
         for L, layer in ((1, 0), (2, 1)) for direction in ("forward", "backward")]
CASES = [(name, f, 0, None) for name, f in MODULES.items()] + STACKS + BIDIR


def inputs(seed=1, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=(T, B, D))


def reference(m, layer, direction, xs):
    """(module used for steps, its inputs) for the imported layer/direction, all by torch."""
    reverse = direction == "backward"
    if isinstance(m, nn.RNNCellBase) or layer == "all" or (m.num_layers == 1 and not m.bidirectional):
        return m, xs
    k = layer
    with torch.no_grad():
        u = lower_outputs(m, k, torch.as_tensor(xs)).numpy()
    return layer_module(m, k, reverse), (u[::-1].copy() if reverse else u)


def agree(mine, ref, tol):
    """Same -inf pattern, and within tol where finite; returns the largest difference."""
    assert np.array_equal(np.isfinite(mine), np.isfinite(ref))
    fin = np.isfinite(ref)
    d = float(np.abs(mine[fin] - ref[fin]).max()) if fin.any() else 0.0
    assert d <= tol, d
    return d


def check_against_module(m, imp: Imported, xs, layer, direction):
    mod, us = reference(m, layer, direction, xs)
    ref = StepRef(mod)
    states, jac = ref.run(us)
    cell, params = imp.cell, imp.params
    assert cell.state_size == ref.S and imp.reverse == (direction == "backward")
    T, B, _ = xs.shape
    H = ref.H
    # 1. forward states: ours over imp.inputs(xs) against the module's steps, and the original
    # module's own outputs and final states
    mine = np.empty((T, B, cell.state_size))
    s = cell.initial_state(B)
    for t, x in enumerate(imp.inputs(xs)):
        s, _ = cell.step(params, s, x)
        mine[t] = s
    np.testing.assert_allclose(mine, states[1:], rtol=0, atol=1e-12)
    with torch.no_grad():
        if not isinstance(m, nn.RNNCellBase):   # a *Cell's states were the module's own steps above
            out, hn = m(torch.as_tensor(xs))
            hs, cs = (hn if kind_of(m) == "lstm" else (hn, None))
            dirs = 2 if m.bidirectional else 1
            top = layer == "all" or layer == m.num_layers - 1
            ours_a = mine[:, :, cell.blocks["a"]]
            if top:   # the module's output sequence is the top layer's a, per direction
                half = out[..., H:] if direction == "backward" else out[..., :H]
                np.testing.assert_allclose(ours_a[::-1] if imp.reverse else ours_a, half.numpy(), rtol=0, atol=1e-12)
            layers = range(m.num_layers) if layer == "all" else [layer]
            for j, k in enumerate(layers):
                idx = k * dirs + (direction == "backward")
                pre = f"l{j}." if layer == "all" and m.num_layers > 1 else ""
                np.testing.assert_allclose(mine[-1][:, cell.blocks[pre + "a"]], hs[idx].numpy(), rtol=0, atol=1e-12)
                if cs is not None:
                    np.testing.assert_allclose(mine[-1][:, cell.blocks[pre + "c"]], cs[idx].numpy(), rtol=0, atol=1e-12)
    # 2. curves of every path, every sequence, every lag
    res = probe(cell, params, imp.inputs(xs), lags=T, workers=1)
    direct = cell.blocks["c"] if "c_direct" in cell.paths else None
    want = reference_curves(jac, cell.blocks, cell.paths, T, direct)
    worst = 0.0
    for key, r in want.items():
        worst = max(worst, agree(res.log10[key][0], r, 1e-9))
    return worst


@pytest.mark.parametrize("name,factory,layer,direction", CASES, ids=[c[0] + f"-l{c[2]}-{c[3]}" for c in CASES])
def test_probe_equals_autograd_through_the_module(name, factory, layer, direction):
    m = factory()
    imp = from_module(m, layer=layer, direction=direction)
    check_against_module(m, imp, inputs(), layer, direction)


@pytest.mark.parametrize("ctor", [nn.LSTM, nn.GRU, nn.RNN])
def test_float32_module_read_as_float64(ctor):
    """A float32 module's weights are read exactly and computed in float64: the reference is
    the same module converted to double."""
    torch.manual_seed(3)
    m32 = ctor(D, H, num_layers=2)
    imp = from_module(m32, layer="all")
    assert all(v.dtype == np.float64 for v in imp.params.values())
    check_against_module(m32.double(), imp, inputs(), "all", None)


def test_module_inputs_follow_the_module():
    m = nn.GRU(D, H, batch_first=True)
    xs = inputs()
    np.testing.assert_array_equal(module_inputs(m, torch.as_tensor(xs.transpose(1, 0, 2))), xs)
    assert module_inputs(nn.GRU(D, H), xs[:, 0]).shape == (T, 1, D)   # unbatched: one sequence


def test_weight_file_roundtrip_every_format(tmp_path):
    """The same module saved as .pt, .safetensors (float32 and float64) and .npz imports to the same cell."""
    from safetensors.torch import save_file
    m = make(nn.LSTM, num_layers=2)
    sd = {f"rnn.{k}": v for k, v in m.state_dict().items()}
    sd["head.weight"] = torch.zeros(1, H, dtype=torch.float64)
    torch.save(sd, tmp_path / "m.pt")
    save_file(sd, str(tmp_path / "m.safetensors"))
    save_file({k: v.float() for k, v in sd.items()}, str(tmp_path / "m32.safetensors"))
    np.savez(tmp_path / "m.npz", **{k: v.numpy() for k, v in sd.items()})
    ref = from_module(m, layer="all")
    for f in ("m.pt", "m.safetensors", "m.npz"):
        imp = load_weights(tmp_path / f, "lstm", layer="all")
        assert imp.cell == ref.cell and set(imp.params) == set(ref.params)
        for k in ref.params:
            np.testing.assert_array_equal(imp.params[k], ref.params[k])
        assert "nn.LSTM 'rnn' (2 layers, input 3, hidden 5)" in imp.source
    imp32 = load_weights(tmp_path / "m32.safetensors", layer=1)
    assert imp32.params["W"].dtype == np.float64
    np.testing.assert_array_equal(imp32.params["W"], m.weight_hh_l1.detach().float().double().numpy())
    check_against_module(m.float().double(), imp32, inputs(), 1, None)


WEIGHTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "cases" / "weights"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.slow
def test_trained_weights_from_the_committed_files(kind):
    """Weights after 1,000 PyTorch training steps (examples/train_torch_models.py), read from
    .safetensors as float64, probed over the whole 50-step sequences."""
    from safetensors.torch import load_file
    path = WEIGHTS / f"adding_{kind}16.safetensors"
    imp = load_weights(path, kind)
    assert imp.source.startswith(f"{path}: nn.{kind.upper()} 'rnn' (1 layer, input 2, hidden 16)")
    m = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](2, 16)
    m.load_state_dict({k[4:]: v for k, v in load_file(str(path)).items() if k.startswith("rnn.")})
    xs = read_inputs(WEIGHTS / "adding_inputs.npy", imp.input_size)
    assert xs.shape == (50, 8, 2)
    check_against_module(m.double(), imp, xs, 0, None)


@pytest.mark.parametrize("z_bias", [-40.0, -700.0])
def test_nn_gru_with_a_saturated_update_gate(z_bias):
    """weight_hh = 0: h' = (1 - z) n + z h has d h'/d h = diag(z), z = σ(W_iz x + z_bias) ~ 4e-18
    at -40, exact under autograd. The import's Γ_u = 1 - z is formed from negated z rows, and
    1 - Γ_u was a subtraction that rounded to 0: the curves read -inf where autograd and the
    closed form k log10 σ(z_bias) (no input weights either) are finite."""
    m = make(nn.GRU)
    with torch.no_grad():
        m.weight_hh_l0.zero_()
        m.bias_hh_l0.zero_()
        m.bias_ih_l0[H:2 * H] = z_bias                  # PyTorch's rows (r, z, n): z is the middle block
    if z_bias == -40.0:                                 # σ(-700 + W x) may leave float64: no autograd there
        check_against_module(m, from_module(m), inputs(), 0, None)
    with torch.no_grad():
        m.weight_ih_l0.zero_()
    imp = from_module(m)
    res = probe(imp.cell, imp.params, imp.inputs(inputs()), lags=T, workers=1)
    per_step = -np.logaddexp(0.0, -z_bias) / np.log(10.0)       # log10 σ(z_bias)
    for norm, off in (("spectral", 0.0), ("frobenius", 0.5 * np.log10(H))):
        got, want = res.log10[("a", norm)][0], np.arange(1, T + 1) * per_step + off
        # 1e-12 decades, or 4 ulps where the value passes 2048 (-3648 at lag 12: ulp 4.5e-13)
        assert (np.abs(got - want) <= np.maximum(1e-12, 4 * np.spacing(np.abs(want)))).all(), (norm, got - want)


def test_proj_size_module_refused_by_name():
    from diagnostics.weights import WeightsError
    with pytest.raises(WeightsError, match=r"^torch module: nn.LSTM \(1 layer, input 3, hidden 5\): nn.LSTM with "
                                           r"proj_size 2 \(weight_hr_l0 present\) is not supported"):
        from_module(nn.LSTM(D, H, proj_size=2))


def test_unsupported_modules_named():
    from diagnostics.weights import WeightsError
    with pytest.raises(WeightsError, match=r"^from_module: Sequential holds no recurrent module; expected an nn.RNN"):
        from_module(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(WeightsError, match=r"^from_module: Sequential holds 2 recurrent modules \('0' \(GRU\), "
                                           r"'1' \(LSTM\)\); choose one with prefix"):
        from_module(nn.Sequential(nn.GRU(2, 3), nn.LSTM(3, 3)))
    assert from_module(nn.Sequential(nn.GRU(2, 3), nn.LSTM(3, 3)), prefix="1").cell.kind == "lstm"
    with pytest.raises(WeightsError, match=r"^from_module: expected an nn.RNN, .* got ndarray"):
        from_module(np.zeros(3))
