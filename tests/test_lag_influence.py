"""Lag influence of PyTorch sequence models (diagnostics/interop/influence.py): the exact route
equals torch.autograd.functional.jacobian of the whole model (1e-10 in log10 where the model is
float64 end to end, 1e-6 where it computes in float32 inside), batched VJPs equal one-at-a-time
ones, the sketch's Frobenius interval covers the exact value, the user's model is untouched,
and bad input is one line."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_models import SSMS, WIDTH, call_hf, jacobian_norms, tiny  # noqa: E402

from diagnostics.interop.influence import anchor_rows, directions, exact_norms, lag_influence, sketch_norms  # noqa: E402,E501
from diagnostics.probing.estimator import estimator  # noqa: E402
from diagnostics.interop.models import ModelError, float32_inside, float64_copy  # noqa: E402

NORMS = ("spectral", "frobenius")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on one thread: two intra-op threads on a busy 2-core machine made the
    reference Jacobians ~100x slower (25 s against 0.3 s, LSTM of 5 units)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def inputs(shape, seed=1):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def worst(res, ref, path="influence", anchor=-1):
    return max(np.abs(res.log10[(path, n)][anchor] - ref[n]).max() for n in NORMS)


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_exact_equals_the_jacobian_of_the_whole_model(batch_first):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, batch_first=batch_first)
    x = inputs((2, 9, 3)) if batch_first else inputs((9, 2, 3))
    res = lag_influence(lstm, x, 6, anchors=[7, 9])
    l64 = float64_copy(lstm)
    bf = x if batch_first else x.transpose(0, 1)
    f = (lambda z: l64(z)[0]) if batch_first else (lambda z: l64(z.transpose(0, 1))[0].transpose(0, 1))
    for a, t in enumerate((7, 9)):
        assert worst(res, jacobian_norms(f, bf, t, 6), anchor=a) < 1e-10
    assert res.log10[("influence", "spectral")].shape == (2, 2, 6)
    assert list(res.lags) == list(range(6)) and res.kind == "influence" and res.model == "LSTM"
    assert not res.float32_inside


def test_an_unbatched_sequence_is_one_sequence():
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4)
    x = inputs((6, 3))
    one = lag_influence(gru, x, 5)
    two = lag_influence(gru, x[:, None, :], 5)
    assert np.array_equal(one.log10[("influence", "frobenius")], two.log10[("influence", "frobenius")])


def test_gpt2_exact_equals_the_jacobian_every_layer_too():
    model = tiny("GPT2Model")
    x = inputs((2, 8, WIDTH))
    res = lag_influence(model, x, 5, layers=True)
    m64 = float64_copy(model)
    assert worst(res, jacobian_norms(call_hf(m64), x, 8, 5)) < 1e-10
    assert res.paths == ("influence", "l0.influence", "l1.influence")
    # block 0's output is hidden_states[1] (hidden_states[0] is the embeddings); the last
    # block's is the last hidden state before ln_f
    first = lambda z: m64(inputs_embeds=z, output_hidden_states=True).hidden_states[1]   # noqa: E731
    assert worst(res, jacobian_norms(first, x, 8, 5), path="l0.influence") < 1e-10
    bare = float64_copy(model)
    bare.ln_f = torch.nn.Identity()
    assert worst(res, jacobian_norms(call_hf(bare), x, 8, 5), path="l1.influence") < 1e-10
    assert not res.float32_inside


@pytest.mark.parametrize("name, layers", [("MambaModel", 2), ("RecurrentGemmaModel", 3), ("xLSTMModel", 2)])
def test_layer_paths_number_the_layers_as_memory_paths_do(name, layers):
    res = lag_influence(tiny(name), inputs((1, 4, WIDTH)), 2, layers=True)
    assert res.paths == ("influence",) + tuple(f"l{i}.influence" for i in range(layers))


@pytest.mark.parametrize("name", SSMS)
def test_ssm_exact_equals_the_jacobian_at_float32_level(name):
    model = tiny(name)
    x = inputs((2, 7, WIDTH))
    res = lag_influence(model, x, 6)
    assert worst(res, jacobian_norms(call_hf(float64_copy(model)), x, 7, 6)) < 1e-6
    assert res.float32_inside and res.model == name
    assert np.isfinite(res.log10[("influence", "spectral")]).all()


@pytest.mark.parametrize("name", ("GPT2Model",) + SSMS)
def test_batched_vjps_equal_one_at_a_time(name):
    m64 = float64_copy(tiny(name)).requires_grad_(False)
    x = inputs((2, 6, WIDTH)).requires_grad_(True)
    y = call_hf(m64)(x)
    g = torch.zeros((3,) + tuple(y.shape), dtype=y.dtype)
    g[:, :, -1, :3] = torch.eye(3, dtype=y.dtype)[:, None, :]
    torch.autograd.grad(y, x, g, retain_graph=True, is_grads_batched=True)   # vmap runs: no fallback below
    batched = exact_norms(anchor_rows(y, x, 6, 6, chunk=3), NORMS)
    single = exact_norms(anchor_rows(y, x, 6, 6, chunk=3, batched=False), NORMS)
    tol = 1e-10 if name == "GPT2Model" else 1e-6
    for n in NORMS:
        assert np.abs(batched[n] - single[n]).max() < tol


def test_the_users_model_is_not_touched():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True).train()
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    lag_influence(lstm, inputs((2, 5, 3)).float(), 3)
    assert lstm.training and all(v.dtype == torch.float32 for v in lstm.state_dict().values())
    assert all(torch.equal(before[k], v) for k, v in lstm.state_dict().items())
    assert all(p.grad is None for p in lstm.parameters())


def test_a_compiled_or_data_parallel_model_is_unwrapped():
    lstm = torch.nn.LSTM(3, 4)
    assert type(float64_copy(torch.compile(lstm))) is torch.nn.LSTM
    assert type(float64_copy(torch.nn.DataParallel(lstm))) is torch.nn.LSTM


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_a_missing_cuda_device_is_one_line():
    with pytest.raises(ModelError, match=r"^device: cuda is not available here \(torch [^)]+\); use 'cpu'$"):
        lag_influence(torch.nn.LSTM(3, 4), inputs((5, 1, 3)), 2, device="cuda")


def test_float32_inside_is_detected_per_model():
    x = inputs((1, 4, WIDTH))
    assert float32_inside(tiny("Mamba2Model"), x)
    assert not float32_inside(tiny("GPT2Model"), x)
    assert not float32_inside(torch.nn.LSTM(WIDTH, 3, batch_first=True), x)


def test_the_output_is_chosen_by_key():
    model = tiny("GPT2Model")
    x = inputs((1, 5, WIDTH))
    a = lag_influence(model, x, 3, output="last_hidden_state")
    b = lag_influence(model, x, 3)
    assert np.array_equal(a.log10[("influence", "spectral")], b.log10[("influence", "spectral")])
    with pytest.raises(ModelError, match=r"^output: GPT2Model returns tensors last_hidden_state; got 'logits'$"):
        lag_influence(model, x, 3, output="logits")


def test_sketch_is_calibrated_over_seeds_and_lags():
    """64 rows of a 96-wide output (a GRU: its backward vmaps ~25x faster than the LSTM's): the exact Frobenius norm inside the 95 % interval at >= 90 %
    of (seed, sequence, lag) triples over 20 seeds; the spectral estimate never above the exact.
    One forward pass serves every seed (lag_influence's own steps: directions, anchor_rows,
    sketch_norms; the first seed also through lag_influence itself)."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(4, 96, batch_first=True)
    x = inputs((2, 12, 4))
    exact = lag_influence(gru, x, 12)
    ex = {n: exact.log10[("influence", n)][0] for n in NORMS}
    g64 = float64_copy(gru).requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    y = g64(xg)[0]
    inside, spectral_over = [], []
    for seed in range(20):
        z, L = directions(96, 2, estimator("sketch", 64, seed), 1)
        got = sketch_norms(anchor_rows(y, xg, 12, 12, z, chunk=64), L, NORMS)
        if seed == 0:
            full = lag_influence(gru, x, 12, estimator="sketch", rows=64, seed=0)
            assert np.array_equal(full.interval[("influence", "frobenius")][0], got["interval"])
        lo, hi = np.moveaxis(got["interval"], -1, 0)
        inside.append((lo <= ex["frobenius"]) & (ex["frobenius"] <= hi))
        spectral_over.append(got["spectral"] - ex["spectral"])
    coverage = np.mean(inside)
    print(f"coverage {coverage:.3f} over {np.size(inside)} triples")
    assert coverage >= 0.90, coverage
    assert np.max(spectral_over) < 1e-12


def test_sketch_repeats_bit_for_bit_and_a_narrow_output_is_exact():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 8, batch_first=True)
    x = inputs((2, 6, 3))
    a = lag_influence(lstm, x, 4, estimator="sketch", rows=4, seed=3)
    b = lag_influence(lstm, x, 4, estimator="sketch", rows=4, seed=3)
    assert np.array_equal(a.log10[("influence", "frobenius")], b.log10[("influence", "frobenius")])
    narrow = lag_influence(lstm, x, 4, estimator="sketch", rows=8)
    assert narrow.estimated == {} and np.array_equal(narrow.log10[("influence", "frobenius")],
                                                     lag_influence(lstm, x, 4).log10[("influence", "frobenius")])


class Pooled(torch.nn.Module):
    """Not a sequence model: one vector per sequence."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x).mean(dim=0)


class Blowup(torch.nn.Module):
    batch_first = True

    def forward(self, x):
        return x / 0.0


@pytest.mark.parametrize("make, x, message", [
    (Pooled, inputs((5, 2, 3)), (r"^model: Pooled is not a sequence model: its output has shape \(2, 2\), "
                                 r"expected \(T, B, m\) with B = 2, T = 5$")),
    (lambda: tiny("GPT2Model"), inputs((8, WIDTH)), r"^inputs: GPT2Model takes \(B, T, d\), got shape \(8, 8\)$"),
    (lambda: tiny("GPT2Model"), inputs((1, 8, 5)), r"^inputs: GPT2Model takes 8 features per step, got shape"),
    (lambda: torch.nn.LSTM(3, 4), inputs((2, 5, 4)), r"^inputs: LSTM takes 3 features per step"),
    (Blowup, inputs((1, 4, 3)), r"^model: Blowup's output influence is not finite \(inf or NaN\) on these inputs$"),
    (lambda: torch.nn.LSTM(3, 4), torch.zeros(4, 1, 3, dtype=torch.long), r"^inputs: must be floating-point"),
])
def test_bad_input_is_one_line(make, x, message):
    with pytest.raises(ModelError, match=message) as e:
        lag_influence(make(), x, 2)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"lags": 6}, r"^lags: must be an integer in 1\.\.5 \(the smallest anchor\), got 6$"),
    ({"lags": 2, "anchors": [0]}, r"^anchors: must be steps in 1\.\.5, got \[0\]$"),
    ({"lags": 2, "norms": ["nuclear"]}, r"^norms: must be among spectral, frobenius"),
    ({"lags": 2, "estimator": "auto"}, r"^estimator: must be one of exact, sketch, got 'auto'$"),
    ({"lags": 2, "estimator": "sketch", "rows": 1}, r"^rows: must be an integer >= 2"),
    ({"lags": 2, "layers": True}, r"^layers: needs a Hugging Face model with a list of layers; LSTM is not one$"),
    ({"lags": 2, "device": "gpu7"}, r"^device: must be a torch device such as 'cpu' or 'cuda:0', got 'gpu7'$"),
])
def test_bad_arguments_are_one_line(kwargs, message):
    with pytest.raises(ModelError, match=message):
        lag_influence(torch.nn.LSTM(3, 4), inputs((5, 1, 3)), **kwargs)


def test_exact_rows_over_the_memory_limit_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr("diagnostics.interop.influence.ROWS_MEMORY", 1000)
    with pytest.raises(ModelError, match=r"^lags: the exact influence would keep 0\.0 GB of Jacobian rows per anchor "
                                         r"\(over 0 GB\); use estimator='sketch' or fewer lags$"):
        lag_influence(torch.nn.GRU(3, 8), inputs((6, 2, 3)), 6)
