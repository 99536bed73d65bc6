"""The selective cells (mamba, mamba2, mlstm, gated_deltanet, rglru; REFERENCES items 25-29):
check_cell at option combinations beyond their defaults (the registry-driven tests run the
defaults; every combination of their options in the slow run), the closed forms of issue 25's
checks through the probe, the structured paths (diagonal and Kronecker) against the dense
chain and the mLSTM's memory path against the product of its C-blocks, the Kronecker path's
log space and exact zeros, the mLSTM's gradients against a long-double complex step and on
every branch, and the Mamba and Mamba-2 steps against a torch restatement of transformers'
mixers."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import expit, logit

from diagnostics.cells import check_cell, make_cell
from diagnostics.cells.checks import (
    CHECKS,
    check_jacobian,
    reference_input_jacobian,
    reference_jacobian,
    reference_param_jacobians,
    rel_error,
)
from diagnostics.cells.layers import softplus
from diagnostics.cells.stacked import Stacked
from diagnostics.cells.unroll import unroll
from diagnostics.probing.core import probe
from diagnostics.probing.matnorms import gram_top

LOG10E = math.log10(math.e)

COMBOS = [
    ("mamba", {"d_state": 3, "d_conv": 0}),
    ("mamba", {"d_state": 3, "d_conv": 1, "use_bias": True}),
    ("mamba", {"d_state": 2, "d_conv": 3, "use_conv_bias": False, "dt_rank": 2, "expand": 1}),
    ("mamba2", {"d_state": 3, "heads": 4, "groups": 2}),
    ("mamba2", {"d_state": 2, "heads": 1, "d_conv": 0, "use_bias": True}),
    ("mamba2", {"d_state": 2, "d_conv": 1, "use_conv_bias": False, "norm_eps": 1e-3}),
    ("mlstm", {"heads": 2}),
    ("mlstm", {"heads": 4, "input_init": {"kind": "gaussian", "gain": 3.0}}),
    ("gated_deltanet", {"heads": 1, "head_dim": 3, "expand_v": 1.0}),
    ("gated_deltanet", {"heads": 3, "head_dim": 2, "expand_v": 1.5, "allow_neg_eigval": True}),
    ("gated_deltanet", {"qk_norm_eps": 0.0}),
    ("rglru", {"heads": 2}),
    ("rglru", {"heads": 4, "input_init": {"kind": "gaussian", "gain": 2.0}}),
]




def _every_combination():
    """The full product of each cell's boolean and enumerated options, and of the size regimes
    that change its code path (no convolution, a convolution without a buffer, one with one;
    one or several heads and groups; d_v below, at and above d_k), at small sizes: mamba 24,
    mamba2 48, gated_deltanet 24, mlstm 3 (one to four units per head), rglru 3 = 102 sets."""
    out = [("mamba", {"use_bias": b, "use_conv_bias": cb, "d_conv": K, "dt_rank": R, "d_state": 2})
           for b, cb, K, R in itertools.product([False, True], [False, True], [0, 1, 3], ["auto", 2])]
    out += [("mamba2", {"use_bias": b, "use_conv_bias": cb, "d_conv": K, "heads": H, "groups": G, "d_state": 2})
            for b, cb, K, (H, G) in itertools.product([False, True], [False, True], [0, 1, 3],
                                                      [(1, 1), (4, 1), (4, 2), (4, 4)])]
    out += [("gated_deltanet", {"allow_neg_eigval": neg, "qk_norm_eps": eps, "expand_v": ev, "heads": H, "head_dim": 2})
            for neg, eps, ev, H in itertools.product([False, True], [0.0, 1e-6], [0.5, 1.0, 1.5], [1, 3])]
    return out + [(kind, {"heads": H}) for kind in ("mlstm", "rglru") for H in (1, 2, 4)]


EVERY = _every_combination()


def _check_at(kind, opts, seed):
    cell = make_cell(kind, input_size=3, hidden=4, **opts)
    params = dict(cell.init(np.random.default_rng(seed)))
    if kind == "mlstm":   # gates that read the input (the official init zeroes their weights)
        rng = np.random.default_rng(seed + 10)
        params["igate.weight"] = rng.normal(size=params["igate.weight"].shape)
        params["fgate.weight"] = rng.normal(size=params["fgate.weight"].shape)
    res = check_cell(cell, params, rng=np.random.default_rng(100 + seed))
    assert res.ok and not res.skipped, str(res)


@pytest.mark.parametrize("kind,opts", COMBOS, ids=[f"{k}-{'-'.join(map(str, o.values()))}" for k, o in COMBOS])
@pytest.mark.parametrize("seed", [0, 1])
def test_option_combinations_pass_every_check(kind, opts, seed):
    """Each option value at least once, at two seeds: the default run's subset of EVERY."""
    _check_at(kind, opts, seed)


@pytest.mark.slow     # 102 sets, ~21 s on one core
@pytest.mark.parametrize("i", range(len(EVERY)),
                         ids=[f"{k}-{'-'.join(f'{n}={v}' for n, v in o.items())}" for k, o in EVERY])
def test_every_option_combination_passes_every_check(i):
    _check_at(*EVERY[i], seed=i)


def test_the_cells_declare_their_output_and_paths():
    m = make_cell("mamba", input_size=2, hidden=3, d_state=4, d_conv=4)
    assert m.output_block == "y" and m.readout_size == 3 and m.paths == ("state",) and m.decay_path == "state"
    assert m.blocks == {"y": slice(0, 3), "state": slice(3, 27), "conv": slice(27, 45)} and m.state_size == 45
    assert m.path_block("state") == slice(3, 27)
    ml = make_cell("mlstm", input_size=2, hidden=4, heads=2)
    assert ml.paths == ("state", "memory") and ml.path_block("memory") == ml.blocks["C"]
    assert ml.path_block("state") == slice(4, 4 + 8 + 4 + 2)
    g = make_cell("gated_deltanet", input_size=2, hidden=5, heads=2, head_dim=3, expand_v=2.0)
    assert g.blocks["state"] == slice(5, 5 + 2 * 3 * 6)
    r = make_cell("rglru", input_size=2, hidden=4)
    assert r.output_block == "a" and r.paths == ("a", "state") and r.decay_path == "a"
    # today's cells keep their paths and read-out
    lstm = make_cell("lstm", input_size=1, hidden=3)
    assert lstm.output_block == "a" and lstm.path_block("state") == slice(0, 6) and lstm.decay_path == "a"


# --- closed forms (issue 25's checks) -------------------------------------------------------
def _constant_deltanet(beta: float, alpha: float, neg: bool, dk=3, dv=2, seed=0):
    """One head whose α, β and unit k are constant: channel 0 of the input is 1 at every step
    and only it reaches a_proj, b_proj and k_proj; channel 1 (noise) drives q and v."""
    cell = make_cell("gated_deltanet", input_size=2, hidden=3, heads=1, head_dim=dk, expand_v=dv / dk,
                     allow_neg_eigval=neg, qk_norm_eps=0.0)
    rng = np.random.default_rng(seed)
    p = dict(cell.init(rng))
    p["k_proj.weight"] = np.stack([rng.normal(size=dk) + 1.0, np.zeros(dk)], axis=1)
    p["a_proj.weight"] = np.zeros((1, 2))
    # α = exp(-exp(A_log) softplus(dt_bias)): A_log = 0, dt_bias = softplus⁻¹(-ln α)
    p["A_log"] = np.zeros(1)
    p["dt_bias"] = np.array([math.log(math.expm1(-math.log(alpha)))])
    p["b_proj.weight"] = np.array([[logit(beta / (2.0 if neg else 1.0)), 0.0]])
    xs = np.stack([np.ones((120, 4)), rng.normal(size=(120, 4))], axis=-1)
    return cell, p, xs


@pytest.mark.parametrize("beta,alpha,neg", [(0.5, 0.97, False), (0.9, 0.999, False), (1.6, 0.95, True)])
def test_gated_deltanet_with_constant_gates_and_key_has_the_closed_form(beta, alpha, neg):
    dk, dv = 3, 2
    cell, p, xs = _constant_deltanet(beta, alpha, neg, dk, dv)
    res = probe(cell, p, xs, lags=100, workers=1)
    k = res.lags
    spec = k * math.log10(alpha) + k * math.log10(max(1.0, abs(1.0 - beta)))
    frob = 0.5 * math.log10(dv) + k * math.log10(alpha) + 0.5 * np.log10(dk - 1 + (1.0 - beta) ** (2 * k))
    np.testing.assert_allclose(res.log10[("state", "spectral")][0], np.broadcast_to(spec, (4, 100)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.log10[("state", "frobenius")][0], np.broadcast_to(frob, (4, 100)), rtol=0, atol=1e-12)


def test_mamba_with_a_zero_dt_projection_decays_at_the_largest_softplus_b_times_a():
    cell = make_cell("mamba", input_size=2, hidden=3, d_state=4)
    p = dict(cell.init(np.random.default_rng(0)))
    p["dt_proj.weight"] = np.zeros_like(p["dt_proj.weight"])
    p["dt_proj.bias"] = np.random.default_rng(1).normal(size=cell.E) - 3.0
    res = probe(cell, p, np.random.default_rng(2).normal(size=(200, 3, 2)), lags=150, workers=1)
    A = -np.exp(p["A_log"])
    rate = np.max(softplus(p["dt_proj.bias"])[:, None] * A) * LOG10E
    np.testing.assert_allclose(res.log10[("state", "spectral")][0], np.broadcast_to(res.lags * rate, (3, 150)),
                               rtol=0, atol=1e-12)
    # Frobenius: every (channel, state) entry of the diagonal product
    fro = 0.5 * np.log10(np.sum(np.exp(2 * np.outer(res.lags, softplus(p["dt_proj.bias"])[:, None] * A)), axis=1))
    np.testing.assert_allclose(res.log10[("state", "frobenius")][0], np.broadcast_to(fro, (3, 150)), rtol=0, atol=1e-12)


def test_mamba2_with_zero_dt_rows_decays_at_the_largest_head_rate():
    cell = make_cell("mamba2", input_size=2, hidden=4, heads=4, d_state=3)
    p = dict(cell.init(np.random.default_rng(0)))
    W = p["in_proj.weight"].copy()
    W[-cell.heads:] = 0.0                 # the δ rows: Δ_h = softplus(dt_bias_h)
    p["in_proj.weight"] = W
    p["dt_bias"] = np.array([-2.0, 0.5, -4.0, 1.0])
    res = probe(cell, p, np.random.default_rng(2).normal(size=(200, 3, 2)), lags=150, workers=1)
    rate = np.max(softplus(p["dt_bias"]) * -np.exp(p["A_log"])) * LOG10E
    np.testing.assert_allclose(res.log10[("state", "spectral")][0], np.broadcast_to(res.lags * rate, (3, 150)),
                               rtol=0, atol=1e-12)


def test_mlstm_with_constant_gates_decays_as_the_forget_gates_product():
    """ĩ = 0 >= ln σ(f̃) + m<t-1> at every step (m<0> = 0), so m<t> = 0, f' = σ(b_f): the memory
    path is k log10 σ(b_f); the state path's product [[f'^k I, f'^k [C; n]<t-k>], [0, 0]] has
    spectral norm f'^k sqrt(1 + ||[C; n]<t-k>||²) (one head)."""
    cell = make_cell("mlstm", input_size=2, hidden=3)
    p = dict(cell.init(np.random.default_rng(0)), **{"igate.bias": np.zeros(1), "fgate.bias": np.array([2.0])})
    xs = np.random.default_rng(1).normal(size=(80, 3, 2))
    res = probe(cell, p, xs, lags=80, workers=1)
    k, f = res.lags, expit(2.0)
    np.testing.assert_allclose(res.log10[("memory", "spectral")][0], np.broadcast_to(k * math.log10(f), (3, 80)),
                               rtol=0, atol=1e-12)
    states = unroll(cell, p, xs).states                       # index t - 1 holds state<t>
    assert np.all(states[:, :, cell.blocks["m"]] == 0.0)
    cn = np.concatenate([np.zeros((1, 3, 9 + 3)), states[:, :, 3:3 + 9 + 3]])[80 - k]      # [C; n]<t-k>
    want = k[:, None] * math.log10(f) + 0.5 * np.log10(1.0 + np.sum(cn ** 2, axis=-1))
    np.testing.assert_allclose(res.log10[("state", "spectral")][0], want.T, rtol=0, atol=1e-12)


def test_rglru_with_a_constant_gate_decays_at_the_largest_a():
    cell = make_cell("rglru", input_size=2, hidden=4)
    p = dict(cell.init(np.random.default_rng(0)))
    p["a_gate.w"] = np.zeros_like(p["a_gate.w"])
    p["a_gate.b"] = np.full_like(p["a_gate.b"], 0.3)
    res = probe(cell, p, np.random.default_rng(1).normal(size=(300, 2, 2)), lags=300, workers=1)
    rate = np.max(-8.0 * expit(0.3) * softplus(p["a_param"])) * LOG10E
    np.testing.assert_allclose(res.log10[("a", "spectral")][0], np.broadcast_to(res.lags * rate, (2, 300)),
                               rtol=0, atol=1e-12)


# --- structured paths against the dense chain -----------------------------------------------
STRUCTURED = [("mamba", {"d_state": 4}), ("mamba2", {"d_state": 3, "heads": 4}), ("rglru", {}),
              ("gated_deltanet", {"heads": 2, "head_dim": 3, "expand_v": 1.0}),
              ("gated_deltanet", {"allow_neg_eigval": True})]


@pytest.mark.parametrize("kind,opts", STRUCTURED, ids=[k for k, _ in STRUCTURED])
def test_structured_paths_equal_the_dense_chain(kind, opts):
    cell = make_cell(kind, input_size=2, hidden=4, **opts)
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(90, 3, 2))
    fast = probe(cell, p, xs, lags=55, anchors=[60, 90], workers=1)
    dense = probe(cell, p, xs, lags=55, anchors=[60, 90], workers=1, diagonal=False)
    assert fast.log10.keys() == dense.log10.keys() and fast.log10
    for key in fast.log10:
        assert np.abs(fast.log10[key] - dense.log10[key]).max() <= 1e-12, key



def test_mlstm_memory_path_is_the_product_of_the_c_blocks():
    """The direct path `memory` at anchor t, lag k is Π_s d C<s>/d C<s-1> over s = t-k+1..t:
    the product of the C-blocks of the step Jacobians (the routes through m left out), each
    block taken here from a complex step of `step` and multiplied densely. Gates that read
    the input, so f' moves with the step, the head and the stabiliser's branch."""
    cell = make_cell("mlstm", input_size=2, hidden=4, heads=2)
    p = dict(cell.init(np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    p["igate.weight"] = rng.normal(size=p["igate.weight"].shape)
    p["fgate.weight"] = rng.normal(size=p["fgate.weight"].shape)
    xs = rng.normal(size=(90, 3, 2))
    anchors, K, C = [60, 90], 55, cell.blocks["C"]
    res = probe(cell, p, xs, lags=K, anchors=anchors, paths=["memory"], workers=1)
    states = np.concatenate([cell.initial_state(3)[None], unroll(cell, p, xs).states])   # states[t] = state<t>
    blocks = [reference_jacobian(cell, p, states[t - 1], xs[t - 1], method="complex")[0][:, C, C]
              for t in range(1, 91)]                                                   # blocks[t - 1]: step t
    for a, t in enumerate(anchors):
        P = np.broadcast_to(np.eye(C.stop - C.start), blocks[0].shape)
        for k in range(1, K + 1):
            P = P @ blocks[t - k]
            for norm, order in (("spectral", 2), ("frobenius", "fro")):
                want = np.log10([np.linalg.norm(Pb, ord=order) for Pb in P])
                assert np.abs(res.log10[("memory", norm)][a, :, k - 1] - want).max() <= 1e-12, (t, k, norm)
    assert np.ptp(np.diff(res.log10[("memory", "spectral")][1, 0])) > 0.1    # not one constant rate


def test_the_kronecker_path_replays_from_checkpoints_as_from_caches():
    """In a stack of two Gated DeltaNet layers, l0.state alone replays its factors from state
    checkpoints; beside the stack's dense state path it reads the cached pass: the same
    numbers, and the same as the dense chain."""
    cells = (make_cell("gated_deltanet", input_size=2, hidden=3, heads=2, head_dim=2),
             make_cell("gated_deltanet", input_size=3, hidden=3, heads=1, head_dim=3, expand_v=1.0))
    cell = Stacked(cells)
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(70, 3, 2))
    alone = probe(cell, p, xs, lags=60, paths=["l0.state", "l1.state"], workers=1)
    cached = probe(cell, p, xs, lags=60, paths=["state", "l0.state", "l1.state"], workers=1)
    dense = probe(cell, p, xs, lags=60, paths=["l0.state", "l1.state"], workers=1, diagonal=False)
    for key in alone.log10:
        assert np.array_equal(alone.log10[key], cached.log10[key]), key
        assert np.abs(alone.log10[key] - dense.log10[key]).max() <= 1e-12, key


@pytest.mark.slow
def test_the_kronecker_path_is_in_log_space_and_keeps_exact_zeros():
    """10,000 lags at α = 0.5 read about -3010 decades, not -inf; β = 1 with d_k = 1 makes
    A = α (1 - k²) = 0: an exact zero from lag 1 (-inf), never NaN."""
    cell, p, xs = _constant_deltanet(0.5, 0.5, False, dk=2, dv=2)
    xs = np.concatenate([xs] * 84)[:10_000]
    res = probe(cell, p, xs, workers=1)
    spec = res.log10[("state", "spectral")][0]
    assert np.isfinite(spec).all() and spec[:, -1] == pytest.approx(10_000 * math.log10(0.5), abs=1e-9)
    cell1, p1, xs1 = _constant_deltanet(1.0, 0.9, True, dk=1, dv=2)   # β = 2 σ(0) = 1: A = α (1 - k²) = 0
    res1 = probe(cell1, p1, xs1, lags=5, workers=1)
    for norm in ("spectral", "frobenius"):
        assert np.all(res1.log10[("state", norm)] == -np.inf)


# --- the mLSTM's one ill-conditioned point -------------------------------------------------
LONG_DOUBLE = pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="needs an 80-bit long double")


def _long_double_param_vjp(cell, p, state, x, m):
    """Rows m (B, r, S) times d step/d θ for every θ, by a complex step in long double (64-bit
    mantissa): {name: (B, r, *shape)}, an independent reference ~2000x finer than float64's."""
    ld, h = np.clongdouble, np.longdouble(1e-40)
    out = {}
    for name, v in p.items():
        ref = np.empty(m.shape[:2] + np.shape(v))
        for idx in np.ndindex(np.shape(v)):
            pp = {k: np.asarray(a).astype(ld) for k, a in p.items()}
            pp[name][idx] += ld(1j) * h
            J = cell.step(pp, np.asarray(state).astype(ld), np.asarray(x).astype(ld))[0].imag / h
            ref[(slice(None), slice(None)) + idx] = np.einsum("bri,bi->br", m.astype(np.longdouble), J)
        out[name] = ref
    return out


def _reached_point(cell, p, gen, batch=3):
    """A state the cell reaches in 4 steps on N(0, 1) inputs (as check_cell's), and an input."""
    state = cell.initial_state(batch)
    for _ in range(4):
        state, _ = cell.step(p, state, gen.normal(size=(batch, cell.input_size)))
    return state, gen.normal(size=(batch, cell.input_size))


@LONG_DOUBLE
def test_mlstm_q_gradient_at_head_size_one_against_a_long_double_complex_step():
    """With one unit per head the output q C / (|q n| + 1e-6) does not depend on q's scale but
    through the 1e-6: d h/d W_q is ~1e-6 of the two terms it was once formed as the difference
    of (4e-10 relative error here then). The cell takes q's component of dq in closed form; a
    float64 reference resolves it to ~1e-9 relative only (a float64 complex step: 2e-9 here), a
    long-double complex step to ~1e-19 den / 1e-6: they agree to 2.2e-13 (at den = 4.5)."""
    cell = make_cell("mlstm", input_size=1, hidden=1)
    p = cell.init(np.random.default_rng(6))
    state, x = _reached_point(cell, p, np.random.default_rng(1006))
    _, cache = cell.step(p, state, x)
    assert cache.big.any()                                        # the |q n| branch: the degenerate one
    m = np.random.default_rng(3).normal(size=(3, 1, cell.state_size))
    got = cell.param_vjp(p, cache, m, ["q_proj.weight"])["q_proj.weight"]
    ref = _long_double_param_vjp(cell, p, state, x, m)["q_proj.weight"]
    assert np.max(np.abs(got - ref) / np.abs(ref)) <= 1e-12


@LONG_DOUBLE
@pytest.mark.parametrize("input_size", [1, 3])
def test_mlstm_with_one_unit_per_head_passes_check_cell_and_a_long_double_param_vjp(input_size):
    """hidden = heads = 1, seeds 0-11: every check of check_cell but param_vjp passes, and
    param_vjp of every parameter agrees with a long-double complex step to 1e-12 (worst
    measured 4.6e-13, about the reference's own rounding). check_cell's param_vjp is left out
    here because its float64 complex step is the imprecise side at this point (1.1e-9 from the
    long double at input_size 1): the q gradient is the difference of two terms ~1e-6 apart in
    any float64 evaluation of the step. Before the cell took q's component of dq in closed
    form its own q gradient was 1.8e-9 off (7.3e-10 at input_size 3)."""
    others = [c for c in CHECKS if c != "param_vjp"]
    for seed in range(12):
        cell = make_cell("mlstm", input_size=input_size, hidden=1)
        p = cell.init(np.random.default_rng(seed))
        res = check_cell(cell, p, rng=np.random.default_rng(100 + seed), checks=others)
        assert res.ok and not res.skipped, (seed, str(res))
        state, x = _reached_point(cell, p, np.random.default_rng(1000 + seed))
        cache = cell.step(p, state, x)[1]
        m = np.random.default_rng(seed).normal(size=(3, 4, cell.state_size))
        got = cell.param_vjp(p, cache, m, sorted(p))
        ref = _long_double_param_vjp(cell, p, state, x, m)
        for name in p:
            assert rel_error(got[name], ref[name]) <= 1e-12, (seed, name, rel_error(got[name], ref[name]))


# --- the transformers mixers, restated in torch -------------------------------------------
def _torch_mamba(p, xs, E, N, R, K):
    """MambaMixer.slow_forward's maths over a whole sequence, in torch, from the parameters by
    name: Conv1d(groups=E, padding=K-1) cut to the sequence, x_proj split [dt, B, C], dt_proj,
    softplus, exp(Δ A), the scan, y C + D x, gate silu(z), out_proj."""
    import torch
    t = {k: torch.tensor(v) for k, v in p.items()}
    x = torch.tensor(xs).permute(1, 0, 2)                                   # (B, T, d)
    B_, T = x.shape[:2]
    hs, gate = (x @ t["in_proj.weight"].T).transpose(1, 2).chunk(2, dim=1)  # (B, E, T)
    conv = torch.nn.functional.conv1d(hs, t["conv1d.weight"], t["conv1d.bias"], padding=K - 1, groups=E)
    hs = torch.nn.functional.silu(conv[..., :T])
    dt, Bm, Cm = torch.split(hs.transpose(1, 2) @ t["x_proj.weight"].T, [R, N, N], dim=-1)
    delta = torch.nn.functional.softplus(dt @ t["dt_proj.weight"].T + t["dt_proj.bias"]).transpose(1, 2)
    A = -torch.exp(t["A_log"])
    state, ys = torch.zeros(B_, E, N, dtype=torch.float64), []
    for i in range(T):
        state = torch.exp(A * delta[:, :, i, None]) * state + (delta[:, :, i] * hs[:, :, i])[..., None] * Bm[:, i, None, :]
        ys.append(state @ Cm[:, i, :, None])
    y = (torch.stack(ys, -1)[:, :, 0] + hs * t["D"][None, :, None]) * torch.nn.functional.silu(gate)
    return (y.transpose(1, 2) @ t["out_proj.weight"].T).permute(1, 0, 2).numpy()


def _torch_mamba2(p, xs, E, H, P, G, N, K, eps):
    """Mamba2Mixer.torch_forward's one-token recurrence over a sequence, in torch: in_proj split
    [z, xBC, dt], causal conv + silu, split [x, B, C], softplus(dt + dt_bias), exp(Δ A) per head,
    B and C repeated from groups to heads, y + D x, the gated RMSNorm, out_proj."""
    import torch
    t = {k: torch.tensor(v) for k, v in p.items()}
    x = torch.tensor(xs).permute(1, 0, 2)
    B_, T = x.shape[:2]
    X = E + 2 * G * N
    proj = x @ t["in_proj.weight"].T
    z, xbc, dt = torch.split(proj, [E, X, H], dim=-1)
    xbc = torch.nn.functional.silu(torch.nn.functional.conv1d(xbc.transpose(1, 2), t["conv1d.weight"],
                                                              t["conv1d.bias"], padding=K - 1, groups=X)[..., :T])
    hs, Bm, Cm = torch.split(xbc.transpose(1, 2), [E, G * N, G * N], dim=-1)
    delta = torch.nn.functional.softplus(dt + t["dt_bias"])                 # (B, T, H)
    A = -torch.exp(t["A_log"])
    state, ys = torch.zeros(B_, H, P, N, dtype=torch.float64), []
    for i in range(T):
        Bh = Bm[:, i].reshape(B_, G, N).repeat_interleave(H // G, dim=1)
        Ch = Cm[:, i].reshape(B_, G, N).repeat_interleave(H // G, dim=1)
        xh = hs[:, i].reshape(B_, H, P)
        state = state * torch.exp(delta[:, i] * A)[..., None, None] + (delta[:, i, :, None] * xh)[..., None] * Bh[:, :, None, :]
        ys.append(((state @ Ch[..., None])[..., 0] + xh * t["D"][:, None]).reshape(B_, E))
    y = torch.stack(ys, 1) * torch.nn.functional.silu(z)
    y = t["norm.weight"] * y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)
    return (y @ t["out_proj.weight"].T).permute(1, 0, 2).numpy()


def test_mamba_and_mamba2_steps_are_transformers_mixers_by_parameter_name():
    """The cells' outputs y<t>, step by step from the zero state, equal a torch restatement of
    transformers' MambaMixer / Mamba2Mixer reading the same parameters by their names and
    shapes: a state_dict of either mixer (without its prefix) is the cell's parameters."""
    pytest.importorskip("torch")   # the restatements need it (an optional extra); the rest of the file does not
    xs = np.random.default_rng(0).normal(size=(12, 3, 4))
    cell = make_cell("mamba", input_size=4, hidden=4, d_state=3, d_conv=4, dt_rank=2)
    p = dict(cell.init(np.random.default_rng(1)), **{"conv1d.bias": np.random.default_rng(2).normal(size=8)})
    got = unroll(cell, p, xs).states[:, :, cell.blocks["y"]]
    assert np.abs(got - _torch_mamba(p, xs, cell.E, 3, 2, 4)).max() <= 1e-12
    cell2 = make_cell("mamba2", input_size=4, hidden=4, heads=4, groups=2, d_state=3, d_conv=3)
    p2 = dict(cell2.init(np.random.default_rng(3)), **{"conv1d.bias": np.random.default_rng(4).normal(size=cell2.X),
                                                        "norm.weight": np.random.default_rng(5).normal(size=8)})
    got2 = unroll(cell2, p2, xs).states[:, :, cell2.blocks["y"]]
    assert np.abs(got2 - _torch_mamba2(p2, xs, cell2.E, 4, 2, 2, 3, 3, cell2.norm_eps)).max() <= 1e-12


def test_mlstm_derivatives_against_central_differences_on_every_branch():
    """The max of the stabiliser and the |q^T n| of the normaliser are not analytic at their
    switches: away from them the Jacobian, the input vjp and the parameter vjp agree with
    central differences (an independent reference, not the complex step the cell's analytic
    flag selects) and with the complex step, at a point where each branch of each switch is
    taken by some (sequence, head)."""
    cell = make_cell("mlstm", input_size=3, hidden=8, heads=4)
    p = dict(cell.init(np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    p["igate.weight"] = rng.normal(size=p["igate.weight"].shape)
    p["fgate.weight"] = rng.normal(size=p["fgate.weight"].shape)
    p["q_proj.weight"] = 0.05 * p["q_proj.weight"]    # small q^T n: the exp(-m) branch too
    state = cell.initial_state(16)
    for x in rng.normal(size=(6, 16, 3)):
        state, _ = cell.step(p, state, x)
    x = rng.normal(size=(16, 3))
    cache = cell.step(p, state, x)[1]
    for switch in (cache.sel, cache.big, cache.sign > 0):
        assert switch.any() and not switch.all()
    m = rng.normal(size=(16, 3, cell.state_size))
    got_x, got_p = cell.input_vjp(p, cache, m), cell.param_vjp(p, cache, m, sorted(p))
    for method, tol in (("central", 1e-6), ("complex", 1e-10)):     # check_cell's tolerances
        res = check_jacobian(cell, p, state, x, method=method)
        assert res.ok, (method, res.max_rel_error)
        Jx = reference_input_jacobian(cell, p, state, x, method=method)
        assert rel_error(got_x, m @ Jx) <= tol, (method, "input_vjp")
        for name, J in reference_param_jacobians(cell, p, state, x, method=method).items():
            assert rel_error(got_p[name], np.einsum("bri,bi...->br...", m, J)) <= tol, (method, name)


def test_the_dense_chain_survives_a_top_singular_value_repeated_many_times():
    """Gated DeltaNet's step Jacobian I_{d_v} ⊗ α (I - β k k^T) has σ_max = α repeated
    d_v (d_k - 1) times (56 at d = 8); LAPACK's dsyevx, the eigensolver fallback of the dense
    chain's tracker, fails on that cluster ('eigenvectors failed to converge': the dense probe
    of a gated_deltanet with head_dim 10 raised at its first lags). The fallback answers all
    the same, to rounding of σ² = α²."""
    d = 8
    k = np.random.default_rng(3).normal(size=d)
    k /= np.linalg.norm(k)
    M = np.kron(np.eye(d), 0.999 * (np.eye(d) - 0.5 * np.outer(k, k)))
    np.testing.assert_allclose(gram_top(M[None]), [0.999 ** 2], rtol=1e-14)
    cell = make_cell("gated_deltanet", input_size=4, hidden=4, heads=4, head_dim=10, expand_v=1.0)
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(4, 4, 4))
    fast = probe(cell, p, xs, workers=1)
    dense = probe(cell, p, xs, workers=1, diagonal=False)
    for key in fast.log10:
        assert np.abs(fast.log10[key] - dense.log10[key]).max() <= 1e-12, key
