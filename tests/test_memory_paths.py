"""Memory paths of the selective recurrences in Hugging Face models (diagnostics/interop/memory.py):
closed forms (Mamba-2 with in_proj's dt rows zero, Mamba with dt_proj's weight zero), and the
k-step state Jacobian from autograd through each family's own transformers scan (the Mamba
decode step, the Mamba-2 chunked scan, the RG-LRU layer itself, the mLSTM recurrent step)
started from a state that requires grad; and the one-line refusal of any other model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_models import WIDTH  # noqa: E402
from hf_models import tiny as tiny_model  # noqa: E402
from transformers.models.mamba import modeling_mamba  # noqa: E402
from transformers.models.mamba2 import modeling_mamba2  # noqa: E402
from transformers.models.xlstm import modeling_xlstm  # noqa: E402

from diagnostics.interop.memory import memory_paths  # noqa: E402
from diagnostics.interop.models import ModelError, float64_copy  # noqa: E402

F32 = 1e-6            # float32-level, in log10: these scans run their decay in float32
LOG10E = np.log10(np.e)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on one thread (two threads on a busy 2-core machine: ~100x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(name):
    """The tiny model with frozen parameters (the references read them as numbers)."""
    return tiny_model(name).requires_grad_(False)


def inputs(B=2, T=9, seed=1):
    return torch.randn(B, T, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def log10_norms(diag: np.ndarray) -> tuple[float, float]:
    """(spectral, Frobenius) log10 norms of diag(entries)."""
    return np.log10(np.abs(diag).max()), np.log10(np.sqrt((diag ** 2).sum()))


def capture(model, module_of, hook_kind="forward"):
    """Run the float64 copy of model once; {layer index: what the hook saw}."""
    m64 = float64_copy(model).requires_grad_(False)
    got, hooks = {}, []
    for i, layer in enumerate(m64.layers if hasattr(m64, "layers") else m64.blocks):
        mod = module_of(layer)
        if mod is None:
            continue
        if hook_kind == "forward":
            hooks.append(mod.register_forward_hook(lambda m, a, o, i=i: got.update({i: o})))
        else:
            hooks.append(mod.register_forward_pre_hook(lambda m, a, k, i=i: got.update({i: (a, k)}), with_kwargs=True))
    with torch.no_grad():
        m64(inputs_embeds=inputs(), use_cache=False)
    for h in hooks:
        h.remove()
    return m64, got


def test_mamba2_closed_form_with_the_dt_rows_zero():
    model = tiny("Mamba2Model")
    with torch.no_grad():
        for layer in model.layers:
            layer.mixer.in_proj.weight[-layer.mixer.num_heads:] = 0.0
    res = memory_paths(model, inputs(), 9)
    k = np.arange(1, 10)
    for i, layer in enumerate(model.layers):
        mx = layer.mixer
        rate = (-torch.nn.functional.softplus(mx.dt_bias.double()) * torch.exp(mx.A_log.double())).numpy()
        spectral = k * rate.max() * LOG10E
        frob = 0.5 * np.log10((mx.head_dim * mx.ssm_state_size * np.exp(2 * np.outer(k, rate))).sum(axis=1))
        for name, want in (("spectral", spectral), ("frobenius", frob)):
            got = res.log10[(f"l{i}.memory", name)]
            assert np.abs(got - want).max() < F32, (i, name)
    assert res.kind == "memory" and list(res.lags) == list(k) and res.float32_inside


def test_mamba_closed_form_through_dt_proj():
    model = tiny("MambaModel")
    with torch.no_grad():
        for layer in model.layers:
            layer.mixer.dt_proj.weight.zero_()
    res = memory_paths(model, inputs(), 9)
    k = np.arange(1, 10)
    for i, layer in enumerate(model.layers):
        mx = layer.mixer
        rate = (-torch.nn.functional.softplus(mx.dt_proj.bias.double())[:, None]
                * torch.exp(mx.A_log.double())).numpy().ravel()
        spectral = k * rate.max() * LOG10E
        frob = 0.5 * np.log10(np.exp(2 * np.outer(k, rate)).sum(axis=1))
        assert np.abs(res.log10[(f"l{i}.memory", "spectral")] - spectral).max() < F32
        assert np.abs(res.log10[(f"l{i}.memory", "frobenius")] - frob).max() < F32


def test_mamba_equals_autograd_through_its_decode_step():
    model = tiny("MambaModel")
    t, K = 9, 6
    res = memory_paths(model, inputs(), K)
    m64, got = capture(model, lambda layer: layer.mixer.x_proj)
    for i, xp in got.items():
        mx = m64.layers[i].mixer
        ts = xp[..., :mx.time_step_rank]
        dt = ts @ mx.dt_proj.weight.T                      # (B, T, D), bias passed to the step
        A = -torch.exp(mx.A_log.float())
        for b in range(2):
            for k in (1, 3, K):
                s0 = torch.ones(1, mx.intermediate_size, mx.ssm_state_size, dtype=torch.float64, requires_grad=True)
                s = s0.clone()
                for step in range(t - k, t):
                    zeros_b = torch.zeros(1, mx.ssm_state_size, dtype=torch.float64)
                    modeling_mamba.mamba_selective_state_update(
                        s, torch.zeros(1, mx.intermediate_size, dtype=torch.float64), dt[b:b + 1, step], A,
                        zeros_b, zeros_b, dt_bias=mx.dt_proj.bias.float(), dt_softplus=True)
                (g,) = torch.autograd.grad(s.sum(), s0)
                want = log10_norms(g.numpy())
                for n, w in zip(("spectral", "frobenius"), want):
                    assert abs(res.log10[(f"l{i}.memory", n)][0, b, k - 1] - w) < F32


def test_mamba2_equals_autograd_through_its_chunked_scan():
    model = tiny("Mamba2Model")
    t, K = 9, 7
    res = memory_paths(model, inputs(), K)
    m64, got = capture(model, lambda layer: layer.mixer.in_proj)
    for i, proj in got.items():
        mx = m64.layers[i].mixer
        H, P, N = mx.num_heads, mx.head_dim, mx.ssm_state_size
        for k in (1, 4, K):
            dt = proj[:, t - k:t, -H:]
            s0 = torch.ones(2, H, P, N, dtype=torch.float64, requires_grad=True)
            zeros = torch.zeros(2, k, mx.n_groups, N, dtype=torch.float64)
            _, final = modeling_mamba2.mamba2_chunk_scan(
                torch.zeros(2, k, H, P, dtype=torch.float64), dt, -torch.exp(mx.A_log.float()), zeros, zeros,
                chunk_size=mx.chunk_size, dt_bias=mx.dt_bias, initial_states=s0, dt_softplus=True,
                dt_limit=mx.time_step_limit, return_final_states=True)
            (g,) = torch.autograd.grad(final.sum(), s0)
            for b in range(2):
                for n, w in zip(("spectral", "frobenius"), log10_norms(g[b].numpy())):
                    assert abs(res.log10[(f"l{i}.memory", n)][0, b, k - 1] - w) < F32


def test_rglru_equals_autograd_through_the_layer_itself():
    model = tiny("RecurrentGemmaModel")
    t, K = 9, 8
    res = memory_paths(model, inputs(), K)
    assert res.paths == ("l0.memory", "l1.memory")        # layer 2 is attention: no recurrence
    m64, got = capture(model, lambda layer: getattr(layer.temporal_block, "rg_lru", None), "pre")
    for i, (args, kwargs) in got.items():
        lru = m64.layers[i].temporal_block.rg_lru
        act = args[0]
        for k in (1, 5, K):
            s0 = torch.ones(2, act.shape[2], dtype=torch.float32, requires_grad=True)
            lru.recurrent_states = s0
            positions = torch.arange(t - k, t)[None].expand(2, -1)   # step s sits at position s - 1
            out = lru(act[:, t - k:t], positions)
            (g,) = torch.autograd.grad(out[:, -1].sum(), s0)
            lru.recurrent_states = None
            for b in range(2):
                for n, w in zip(("spectral", "frobenius"), log10_norms(g[b].double().numpy())):
                    assert abs(res.log10[(f"l{i}.memory", n)][0, b, k - 1] - w) < F32


def test_rglru_reset_at_the_first_step_is_an_exact_zero():
    res = memory_paths(tiny("RecurrentGemmaModel"), inputs(T=5), 5)
    assert np.isneginf(res.log10[("l0.memory", "spectral")][..., 4]).all()
    assert np.isfinite(res.log10[("l0.memory", "spectral")][..., :4]).all()


def test_mlstm_equals_autograd_through_its_recurrent_step():
    model = tiny("xLSTMModel")
    with torch.no_grad():   # gates that move: the stabiliser switches between its two branches
        for block in model.blocks:
            block.mlstm_layer.igate_preact.weight.normal_(0.0, 2.0)
            block.mlstm_layer.fgate_preact.weight.normal_(0.0, 2.0)
    t, K = 9, 8
    res = memory_paths(model, inputs(), K)
    _, got = capture(model, lambda block: block.mlstm_layer.mlstm_backend, "pre")
    step = modeling_xlstm.mlstm_recurrent_step_native
    moved = 0
    for i, (_, kw) in got.items():
        q, key, v, ig, fg = (kw[n] for n in ("query", "key", "value", "igate", "fgate"))
        B, H, _, dqk = q.shape
        for k in (1, 4, K):
            c = torch.zeros(B, H, dqk, v.shape[-1])
            n_ = torch.zeros(B, H, dqk)
            m = torch.zeros(B, H, 1)
            for s in range(t):
                if s == t - k:
                    c0 = c.detach().clone().requires_grad_(True)
                    c = c0
                _, (c, n_, m) = step(q[:, :, s], key[:, :, s], v[:, :, s], ig[:, :, s, None], fg[:, :, s, None],
                                     c, n_, m)
            (g,) = torch.autograd.grad(c.sum(), c0)
            for b in range(B):
                want = log10_norms(g[b].double().numpy())
                moved += want[0] < -0.01
                for n, w in zip(("spectral", "frobenius"), want):
                    assert abs(res.log10[(f"l{i}.memory", n)][0, b, k - 1] - w) < F32
    assert moved   # the check saw forget factors below 1, not only the stabiliser's exact 1


@pytest.mark.parametrize("make", [lambda: tiny("GPT2Model"), lambda: torch.nn.LSTM(WIDTH, 4, batch_first=True)])
def test_any_other_model_is_refused_in_one_line(make):
    with pytest.raises(ModelError, match=r"^memory_paths: (GPT2Model|LSTM) has no supported recurrence; supported: "
                                         r"MambaMixer \(Mamba\), Mamba2Mixer \(Mamba-2\), RecurrentGemmaRglru "
                                         r"\(RecurrentGemma RG-LRU\), xLSTMLayer \(xLSTM mLSTM\) "
                                         r"\(transformers 5\.25\.0 tested\)$"):
        memory_paths(make(), inputs(B=1, T=4), 2)


def test_lags_and_anchors_are_checked():
    with pytest.raises(ModelError, match=r"^lags: must be an integer in 1\.\.4"):
        memory_paths(tiny("Mamba2Model"), inputs(T=4), 5)


def test_the_users_model_keeps_no_hook_and_repeats_bit_for_bit():
    model = tiny("Mamba2Model")
    a = memory_paths(model, inputs(), 5)
    b = memory_paths(model, inputs(), 5)
    assert all(np.array_equal(a.log10[k], b.log10[k]) for k in a.log10)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert next(model.parameters()).dtype == torch.float32
