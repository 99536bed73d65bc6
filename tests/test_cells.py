"""Cells: every built-in kind in the registry through check_cell (each analytic derivative
against complex step, central differences for relu), closed forms from REFERENCES.md items 4
and 8, the LSTM's scratch memory, initialisers, validation and the registry."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args, get_origin

import numpy as np
import pytest
from cell_cases import CASES, H_CENTRAL, VARIANTS, case_id, rel_err, setup
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from diagnostics.cells import (
    Cell,
    cell_kinds,
    check_cell,
    check_jacobian,
    freeze,
    make_cell,
    reference_jacobian,
    register_cell,
    sigmoid,
    unregister_cell,
)
from diagnostics.cells.checks import reference_input_jacobian, reference_param_jacobians
from diagnostics.cells.registry import cell_factory
from diagnostics.options import option_fields
from diagnostics.probing import probe


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_builtin_cell_passes_every_check(case):
    kind, opts, n, d, seed = case
    cell = make_cell(kind, input_size=d, hidden=n, **opts)
    res = check_cell(cell, cell.init(np.random.default_rng(seed)), rng=np.random.default_rng(1000 + seed))
    assert res.ok, str(res)
    # the built-in cells supply every hook the probe, the trainer and the sensitivity use
    assert {o.check for o in res.outcomes if o.status == "skipped"} <= {"log_diagonal"}, str(res)


def test_the_variants_name_registered_kinds():
    assert set(VARIANTS) <= set(cell_kinds())


NON_ANALYTIC = [c for c in CASES if not make_cell(c[0], input_size=c[3], hidden=c[2], **c[1]).analytic]


@pytest.mark.parametrize("case", NON_ANALYTIC, ids=case_id)
def test_piecewise_linear_cells_are_exact_at_a_large_difference_step(case):
    """relu is piecewise linear: central differences at h = 1e-3 have no truncation error, so the
    relu cells' derivatives agree with them to 1e-10 (check_cell's 1e-6 at h = 1e-6 is for any
    step that is not analytic)."""
    cell, params, state, x, rng = setup(*case)
    assert NON_ANALYTIC and not cell.analytic
    _, cache = cell.step(params, state, x)
    J = cell.jacobian(params, cache)
    assert rel_err(J, reference_jacobian(cell, params, state, x, h=H_CENTRAL)[0]) <= 1e-10
    Jx = reference_input_jacobian(cell, params, state, x, h=H_CENTRAL)
    M = rng.normal(size=(3, 5, cell.state_size))
    assert rel_err(cell.vjp(params, cache, M), M @ J) <= 1e-12
    assert rel_err(cell.input_vjp(params, cache, M), M @ Jx) <= 1e-10
    w = rng.normal(size=state.shape)
    g_prev, grads, g_x = cell.backward(params, cache, w)
    assert rel_err(g_prev, np.einsum("bi,bij->bj", w, J)) <= 1e-12
    Jp = reference_param_jacobians(cell, params, state, x, h=H_CENTRAL)
    for name in params:
        assert rel_err(grads[name], np.einsum("bi,bi...->...", w, Jp[name])) <= 1e-10, name
    assert rel_err(g_x, np.einsum("bi,bij->bj", w, Jx)) <= 1e-10


# --- closed forms (REFERENCES.md items 4 and 8) -------------------------------------------
def zero_recurrent_lstm(forget_gate=True, forget_bias=1.0, n=4, d=2, **kw):
    cell = make_cell("lstm", input_size=d, hidden=n, forget_gate=forget_gate, forget_bias=forget_bias,
                     recurrent_init="zeros", **kw)
    return cell, cell.init(np.random.default_rng(3))


@pytest.mark.parametrize("b_f", [0.0, 1.0, 2.0, np.log(99), -3.0])
def test_lstm_direct_path_is_sigma_bf_to_the_k(b_f):
    cell, params = zero_recurrent_lstm(forget_bias=b_f)
    n, B, k = 4, 3, 25
    state = np.random.default_rng(0).normal(size=(B, 2 * n))
    x = np.zeros((B, 2))          # constant (zero) input: Γ_f = σ(b_f) at every step
    logs, P = [], np.eye(2 * n)
    for _ in range(k):
        state, cache = cell.step(params, state, x)
        logs.append(cell.direct_memory_log(params, cache))
        P = cell.jacobian(params, cache) @ P
    exact = -np.logaddexp(0.0, -b_f)  # ln σ(b_f)
    for lg in logs:
        assert lg.shape == (B, n) and np.all(lg == exact)
    assert abs(exact - np.log(sigmoid(np.array([b_f]))[0])) <= 1e-15 * max(1, abs(exact))
    # with W = 0, c<t> depends on c<t-k> only through the direct path: the c-block is σ(b_f)^k I
    c = cell.blocks["c"]
    np.testing.assert_allclose(P[:, c, c], np.broadcast_to(np.exp(k * exact) * np.eye(n), (B, n, n)),
                               rtol=1e-13, atol=0)


def test_lstm_constant_nonzero_input_gives_identical_gates():
    cell, params = zero_recurrent_lstm()
    x = np.full((2, 2), 0.7)
    state = np.zeros((2, 8))
    first = None
    for _ in range(10):
        state, cache = cell.step(params, state, x)
        lg = cell.direct_memory_log(params, cache)
        first = lg if first is None else first
        assert np.array_equal(lg, first)
    z_f = x @ cell.split(params)["U_f"].T + 1.0
    np.testing.assert_allclose(first, np.log(sigmoid(z_f)), rtol=1e-15)


def test_constant_error_carousel():
    cell = make_cell("lstm", input_size=2, hidden=5, forget_gate=False)
    params = cell.init(np.random.default_rng(0))
    assert cell.gates == ("u", "c", "o") and params["W"].shape == (15, 5)
    rng = np.random.default_rng(1)
    _, cache = cell.step(params, rng.normal(size=(3, 10)), rng.normal(size=(3, 2)))
    assert np.all(cell.direct_memory_log(params, cache) == 0.0)
    J = cell.jacobian(params, cache)
    assert np.array_equal(J[:, 5:, 5:], np.broadcast_to(np.eye(5), (3, 5, 5)))


@pytest.mark.parametrize("b_f,printed,digits", [(0.0, 1.44, 2), (1.0, 3.19, 2), (2.0, 7.88, 2),
                                                 (np.log(99), 99.5, 1)])
def test_forget_bias_time_scale(b_f, printed, digits):
    cell, params = zero_recurrent_lstm(forget_bias=b_f)
    _, cache = cell.step(params, np.zeros((1, 8)), np.zeros((1, 2)))
    tau = -1.0 / cell.direct_memory_log(params, cache)
    assert np.all(np.round(tau, digits) == printed)


def test_chrono_initialisation():
    T_max = 50
    cell = make_cell("lstm", input_size=2, hidden=200, chrono=T_max, forget_bias=5.0)
    s = cell.split(cell.init(np.random.default_rng(0)))
    assert np.all(s["b_f"] >= 0.0) and np.all(s["b_f"] <= np.log(T_max - 1))
    assert np.array_equal(s["b_u"], -s["b_f"])
    assert s["b_f"].std() > 0.3                      # spread, not the forget_bias constant
    assert np.all(s["b_o"] == 0.0) and np.all(s["b_c"] == 0.0)


# --- the LSTM's scratch memory ---------------------------------------------------------------
def test_the_lstm_keeps_at_most_its_scratch_budget_after_a_probe():
    """The vjp's scratch arrays are kept per thread between calls; at n = 512, B = 64 the
    folded step matrices alone are 268 MB. Here n = 256, B = 32: 34 MB of them."""
    from diagnostics.cells import lstm, make_cell
    lstm.SCRATCH.clear()   # whatever earlier tests left in this thread's scratch
    cell = make_cell("lstm", input_size=1, hidden=256)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((2, 32, 1))
    probe(cell, params, xs, lags=1, paths=("a",), norms=("frobenius",), workers=1)
    assert lstm.SCRATCH.nbytes() <= lstm.SCRATCH_BYTES
    # a small probe's scratch is still kept, and reused from call to call
    small = make_cell("lstm", input_size=1, hidden=16)
    probe(small, small.init(np.random.default_rng(0)), xs[:, :8], lags=2, workers=1)
    kept = lstm.SCRATCH.held()
    assert kept and lstm.SCRATCH.nbytes() <= lstm.SCRATCH_BYTES
    probe(small, small.init(np.random.default_rng(0)), xs[:, :8], lags=2, workers=1)
    assert all(lstm.SCRATCH.held().get(k) is a for k, a in kept.items())


# --- initialisers ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_initialisers(kind):
    n, d = 6, 3
    rng = np.random.default_rng(0)
    cell = make_cell(kind, input_size=d, hidden=n, recurrent_init={"kind": "orthogonal", "gain": 1.0})
    p = cell.init(rng)
    for W in np.split(p["W_a"] if kind == "rnn" else p["W"], 1 if kind == "rnn" else len(cell.gates)):
        np.testing.assert_allclose(W.T @ W, np.eye(n), atol=1e-13)
    cell = make_cell(kind, input_size=d, hidden=n, recurrent_init={"kind": "identity", "gain": 0.9},
                     input_init={"kind": "uniform", "gain": 2.0})
    p = cell.init(rng)
    Ws = [p["W_a"]] if kind == "rnn" else np.split(p["W"], len(cell.gates))
    Us = [p["U_a"]] if kind == "rnn" else np.split(p["U"], len(cell.gates))
    for W, U in zip(Ws, Us):
        assert np.array_equal(W, 0.9 * np.eye(n))
        assert np.all(np.abs(U) <= 2.0 / np.sqrt(n)) and np.abs(U).max() > 0.5 / np.sqrt(n)
    cell = make_cell(kind, input_size=d, hidden=n, input_init="zeros")
    assert all(np.all(v == 0) for k, v in cell.init(rng).items() if k.startswith("U"))
    # determinism: the same seed gives bit-identical parameters
    a, b = cell.init(np.random.default_rng(7)), cell.init(np.random.default_rng(7))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_gaussian_init_scale():
    cell = make_cell("gru", input_size=400, hidden=300, recurrent_init={"kind": "gaussian", "gain": 2.0})
    p = cell.init(np.random.default_rng(0))
    assert abs(p["W"].std() - 2.0 / np.sqrt(300)) < 0.01 * 2.0 / np.sqrt(300)
    assert abs(p["U"].std() - 1.0 / np.sqrt(400)) < 0.01 / np.sqrt(400)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_params_read_only_and_layout(kind):
    cell = make_cell(kind, input_size=2, hidden=3)
    p = cell.init(np.random.default_rng(0))
    for v in p.values():
        assert v.dtype == np.float64
        with pytest.raises(ValueError):
            v[...] = 0.0
    S = 6 if kind == "lstm" else 3
    assert cell.state_size == S and cell.initial_state(4).shape == (4, S)
    if kind == "lstm":
        assert cell.blocks == {"a": slice(0, 3), "c": slice(3, 6)}
        assert cell.paths == ("a", "c", "c_direct", "state")
    else:
        assert cell.blocks == {"a": slice(0, 3)} and cell.paths == ("a",)
    _, cache = cell.step(p, cell.initial_state(2), np.ones((2, 2)))
    assert (cell.direct_memory_log(p, cache) is None) == (kind != "lstm")
    assert (cell.recurrent_weight(p) is None) == (kind != "rnn")
    assert (cell.activation_gamma() is None) == (kind != "rnn")
    assert cell.describe()["kind"] == kind
    if kind != "rnn":   # without the optional gate its parameters do not exist
        off = make_cell(kind, input_size=2, hidden=3, **{"gru": {"reset_gate": False},
                                                       "lstm": {"forget_gate": False}}[kind])
        q = off.init(np.random.default_rng(0))
        assert q["W"].shape == (3 * (len(cell.gates) - 1), 3) and q["b"].shape == (3 * len(off.gates),)


# --- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind,opts,msg", [
    ("rnn", {"hidden": 0}, "hidden: must be a positive integer, got 0"),
    ("gru", {"input_size": -2}, "input_size: must be a positive integer, got -2"),
    ("lstm", {"hidden": 2.5}, "hidden: must be an integer, got 2.5"),
    ("rnn", {"recurrent_init": {"kind": "orthogonal", "gain": float("nan")}}, "recurrent_init.gain: must be a finite"),
    ("gru", {"input_init": "he"}, "input_init.kind: must be one of"),
    ("lstm", {"input_init": {"kind": "gaussian", "scale": 1}}, "input_init.scale: unknown key"),
    ("lstm", {"chrono": 1}, "chrono: must be >= 2"),
    ("lstm", {"forget_bias": float("inf")}, "forget_bias: must be a finite number"),
    ("lstm", {"forget_gate": "no"}, "forget_gate: must be true or false"),
    ("gru", {"reset_gate": 1}, "reset_gate: must be true or false"),
    ("gru", {"reset_gate": False, "reset_after": True}, "reset_after: needs reset_gate: true"),
    ("rnn", {"activation": "sigmoid"}, "activation: must be one of"),
    ("gru", {"gates": 3}, "gates: unknown option of gru cells"),
    ("cnn", {}, "cell kind: must be one of cornn, gated_deltanet, gru, indrnn, lru, lstm, mamba, mamba2, mingru, minlstm, mlstm, rglru, rnn, slstm"),
    ("indrnn", {"recurrent_min": 0.5, "recurrent_max": 0.2}, "recurrent_max: must be >= recurrent_min (0.5), got 0.2"),
    ("indrnn", {"activation": "sigmoid"}, "activation: must be one of"),
    ("lru", {"r_min": 0.0}, "r_min: must be > 0, got 0.0"),
    ("lru", {"r_max": 1.0}, "r_max: must be < 1, got 1.0"),
    ("lru", {"r_min": 0.9, "r_max": 0.5}, "r_max: must be >= r_min (0.9), got 0.5"),
    ("lru", {"max_phase": -1.0}, "max_phase: must be a non-negative number"),
    ("lru", {"normalize": "yes"}, "normalize: must be true or false"),
    ("cornn", {"dt": 0.0}, "dt: must be a positive number"),
    ("cornn", {"gamma": -1.0}, "gamma: must be a non-negative number"),
    ("slstm", {"hidden": 6, "heads": 4}, "heads: must divide hidden (6), got 4"),
    ("slstm", {"forget": "tanh"}, "forget: must be one of"),
    ("mingru", {"update_bias": float("nan")}, "update_bias: must be a finite number"),
])
def test_validation_names_the_option(kind, opts, msg):
    with pytest.raises(ValueError, match="^" + re.escape(msg)):
        make_cell(kind, input_size=opts.pop("input_size", 1), **opts)


# --- a user's own cell ---------------------------------------------------------------------
@dataclass(frozen=True)
class LeakyTanh(Cell):
    """a<t> = (1 - λ) a<t-1> + λ tanh(w * a<t-1> + x<t> @ U.T)  (diagonal recurrence)."""
    input_size: int = 1
    hidden: int = 2
    leak: float = 0.5
    wrong: bool = False
    kind: ClassVar[str] = "leaky_tanh"

    def init(self, rng):
        return freeze({"w": rng.normal(size=self.hidden), "U": rng.normal(size=(self.hidden, self.input_size))})

    def step(self, params, state, x):
        t = np.tanh(params["w"] * state + x @ params["U"].T)
        return (1 - self.leak) * state + self.leak * t, t

    def jacobian(self, params, cache):
        # the wrong variant forgets tanh' -- the kind of slip check_jacobian must catch
        slope = self.leak * params["w"] * (np.ones_like(cache) if self.wrong else 1.0 - cache * cache)
        return np.stack([np.diag(1 - self.leak + s) for s in slope])


def test_user_registered_cell():
    register_cell("leaky_tanh", LeakyTanh, overwrite=True)
    try:
        _check_leaky_tanh()
    finally:
        unregister_cell("leaky_tanh")
    assert "leaky_tanh" not in cell_kinds()


def _check_leaky_tanh():
    rng = np.random.default_rng(0)
    state, x = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    for wrong in (False, True):
        cell = make_cell("leaky_tanh", input_size=2, hidden=3, leak=0.3, wrong=wrong)
        chk = check_jacobian(cell, cell.init(rng), state, x)
        assert chk.method == "complex"
        assert chk.ok is (not wrong)
        assert (chk.max_rel_error < 1e-12) if not wrong else (chk.max_rel_error > 1e-3)
    with pytest.raises(ValueError, match="exists"):
        register_cell("leaky_tanh", LeakyTanh)


# --- property test over every registered kind, random sizes and options ------------------
def _draw_options(data, kind: str) -> dict:
    """A random value for each bool and Literal option of the kind, and a random gain."""
    opts = {}
    for name, (ann, _) in option_fields(cell_factory(kind)).items():
        if ann is bool:
            opts[name] = data.draw(st.booleans(), label=name)
        elif get_origin(ann) is Literal:
            opts[name] = data.draw(st.sampled_from(get_args(ann)), label=name)
        elif name == "recurrent_init":
            opts[name] = {"kind": "gaussian", "gain": data.draw(st.floats(0.1, 3.0), label="gain")}
    return opts


@settings(max_examples=25, deadline=None)
@given(data=st.data(), kind=st.sampled_from(cell_kinds()), n=st.integers(1, 6), d=st.integers(1, 3),
       seed=st.integers(0, 2**31))
def test_property_step_jacobian_and_vjp(data, kind, n, d, seed):
    try:
        cell = make_cell(kind, input_size=d, hidden=n, **_draw_options(data, kind))
    except ValueError:          # a combination the cell refuses by name (tests/test_cells validation)
        assume(False)
    res = check_cell(cell, cell.init(np.random.default_rng(seed)), rng=np.random.default_rng(seed), batch=2,
                     checks=("step", "jacobian", "vjp"))
    assert res.ok, str(res)
