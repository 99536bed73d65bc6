"""Cells: every analytic derivative against complex-step (central differences for relu),
closed forms from REFERENCES.md items 4 and 8, initialisers, validation and the registry."""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics.cells import (
    Cell,
    cell_kinds,
    check_jacobian,
    freeze,
    make_cell,
    reference_jacobian,
    register_cell,
    sigmoid,
    unregister_cell,
)

CONFIGS = [
    ("rnn", {"activation": "tanh"}), ("rnn", {"activation": "relu"}), ("rnn", {"activation": "linear"}),
    ("gru", {"reset_gate": True}), ("gru", {"reset_gate": False, "bias": 0.3}),
    ("gru", {"reset_after": True}), ("gru", {"reset_after": True, "bias": 0.3}),
] + [("lstm", {"forget_gate": fg, "output_tanh": ot, **extra})
     for fg in (True, False) for ot in (True, False)
     for extra in ({"chrono": 20}, {"forget_bias": 2.0, "bias": -0.2})]
MODERN = [
    ("indrnn", {"activation": "relu", "recurrent_min": -1.0, "recurrent_max": 1.0}),
    ("indrnn", {"activation": "tanh"}),
    ("indrnn", {"activation": "linear", "recurrent_min": 0.5, "recurrent_max": 2.0, "bias": 0.3}),
    ("lru", {}), ("lru", {"normalize": False, "r_min": 0.2, "r_max": 0.6, "max_phase": 0.5}),
    ("mingru", {}), ("mingru", {"update_bias": -2.0, "bias": 0.4}),
    ("minlstm", {}), ("minlstm", {"forget_bias": 3.0, "bias": -1.0}),
    ("cornn", {}),
    ("cornn", {"dt": 0.3, "gamma": 0.0, "epsilon": 0.5, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}),
    ("slstm", {}), ("slstm", {"forget": "exp", "forget_bias": -0.5}),
    ("slstm", {"heads": 2, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}),
]
CONFIGS += MODERN
SIZES = [(1, 1), (3, 4), (8, 1), (8, 4)]   # (hidden n, input_size d)
SEEDS = [0, 1]
CASES = [(k, o, n, d, s) for k, o in CONFIGS for n, d in SIZES for s in SEEDS
         if n % o.get("heads", 1) == 0]
H_CENTRAL = 1e-3  # relu is piecewise linear: no truncation error, so a large h only cuts rounding


def case_id(case):
    k, o, n, d, s = case
    return f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}-n{n}-d{d}-s{s}"


def setup(kind, opts, n, d, seed, B=3):
    cell = make_cell(kind, input_size=d, hidden=n, **opts)
    params = cell.init(np.random.default_rng(seed))
    rng = np.random.default_rng(1000 + seed)
    state = rng.normal(scale=0.7, size=(B, cell.state_size))
    if kind == "slstm":   # a state the cell can reach: its normaliser n is positive
        state[:, cell.blocks["n"]] = np.abs(state[:, cell.blocks["n"]]) + 0.2
    return cell, params, state, rng.normal(size=(B, d)), rng


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def numeric_grads(cell, params, state, x, w):
    """d/dθ of L = sum(w * step(θ)) for every parameter entry and every x entry, from `step` alone."""
    def loss(p, xx):
        return np.sum(w * cell.step(p, state.astype(xx.dtype), xx)[0])

    def derivative(perturb):
        if cell.analytic:
            return loss(*perturb(1e-30j)).imag / 1e-30
        return (loss(*perturb(H_CENTRAL)) - loss(*perturb(-H_CENTRAL))) / (2 * H_CENTRAL)

    dt = np.complex128 if cell.analytic else np.float64
    out = {}
    for name, v in params.items():
        g = np.empty(v.shape)
        for idx in np.ndindex(v.shape):
            def perturb(h, name=name, idx=idx):
                p = {k: a.astype(dt) for k, a in params.items()}
                p[name][idx] += h
                return p, x.astype(dt)
            g[idx] = derivative(perturb)
        out[name] = g
    g_x = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        def perturb(h, idx=idx):
            xx = x.astype(dt)
            xx[idx] += h
            return {k: a.astype(dt) for k, a in params.items()}, xx
        g_x[idx] = derivative(perturb)
    return out, g_x


def input_jacobian(cell, params, state, x):
    """d state<t>/d x<t> (B, S, d) from `step` alone: complex step, or central differences."""
    B, d = x.shape
    J = np.empty((B, cell.state_size, d))
    for j in range(d):
        if cell.analytic:
            xx = x.astype(np.complex128)
            xx[:, j] += 1e-30j
            J[:, :, j] = cell.step(params, state.astype(np.complex128), xx)[0].imag / 1e-30
        else:
            xp, xm = x.copy(), x.copy()
            xp[:, j] += H_CENTRAL
            xm[:, j] -= H_CENTRAL
            J[:, :, j] = (cell.step(params, state, xp)[0] - cell.step(params, state, xm)[0]) / (2 * H_CENTRAL)
    return J


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_jacobian_vjp_backward(case):
    cell, params, state, x, rng = setup(*case)
    new, cache = cell.step(params, state, x)
    assert new.shape == state.shape and new.dtype == np.float64
    J = cell.jacobian(params, cache)
    assert J.shape == (3, cell.state_size, cell.state_size)
    # 1. analytic Jacobian against derivatives taken from `step` alone
    chk = check_jacobian(cell, params, state, x)
    assert chk.ok and chk.method == ("complex" if cell.analytic else "central")
    R, _ = reference_jacobian(cell, params, state, x, h=None if cell.analytic else H_CENTRAL)
    assert rel_err(J, R) <= 1e-10
    # 2. vjp = M @ J for row counts on both sides of the LSTM's strategy switch
    for r in (1, 5, 12):
        M = rng.normal(size=(3, r, cell.state_size))
        assert rel_err(cell.vjp(params, cache, M), M @ J) <= 1e-12
        if "absmax" in inspect.signature(cell.vjp).parameters:   # the probe's fused renormalisation
            scale, big, out = np.array([0.5, 3.0, 1e-3]), np.empty(3), np.empty_like(M)
            got = cell.vjp(params, cache, M, out=out, scale=scale, absmax=big)
            ref = (M @ J) * scale[:, None, None]
            assert got is out and rel_err(got, ref) <= 1e-12
            np.testing.assert_allclose(big, np.abs(got).max(axis=(1, 2)), rtol=0, atol=0)
            # the probe stores each sequence's M column-major (transposed views)
            Mf = np.ascontiguousarray(M.transpose(0, 2, 1)).transpose(0, 2, 1)
            got = cell.vjp(params, cache, Mf, out=np.empty_like(Mf), scale=scale, absmax=big)
            assert rel_err(got, ref) <= 1e-12
            np.testing.assert_allclose(big, np.abs(got).max(axis=(1, 2)), rtol=0, atol=0)
    # 2b. input_vjp = M @ d state<t>/d x<t> (what a stacked cell passes down), on both sides
    # of the LSTM's strategy switch, against derivatives of `step` in x alone
    Jx = input_jacobian(cell, params, state, x)
    for r in (1, 5, 12):
        M = rng.normal(size=(3, r, cell.state_size))
        assert rel_err(cell.input_vjp(params, cache, M), M @ Jx) <= 1e-10
    # 3. backward: g_prev = g J, parameter and input gradients against step-only derivatives
    w = rng.normal(size=state.shape)
    g_prev, grads, g_x = cell.backward(params, cache, w)
    assert rel_err(g_prev, np.einsum("bi,bij->bj", w, J)) <= 1e-12
    ref_grads, ref_gx = numeric_grads(cell, params, state, x, w)
    assert set(grads) == set(params)
    for name in params:
        assert grads[name].shape == params[name].shape
        assert rel_err(grads[name], ref_grads[name]) <= 1e-10, name
    assert rel_err(g_x, ref_gx) <= 1e-10


@pytest.mark.parametrize("kind,opts", [c for c in CONFIGS if c[1].get("activation") != "relu"],
                         ids=[case_id(c + (0, 0, 0)) for c in CONFIGS if c[1].get("activation") != "relu"])
def test_bptt_over_several_steps(kind, opts):
    """Chained backward() with summed parameter gradients = complex step of a 4-step loss."""
    cell, params, state, _, rng = setup(kind, opts, 3 if opts.get("heads", 1) == 1 else 4, 2, 5, B=2)
    xs, w = rng.normal(size=(4, 2, 2)), rng.normal(size=state.shape)

    def run(p, s0):
        caches, s = [], s0
        for x in xs:
            s, c = cell.step(p, s, x.astype(s.dtype))
            caches.append(c)
        return s, caches

    _, caches = run(params, state)
    g, total = w, {k: np.zeros_like(v) for k, v in params.items()}
    for c in reversed(caches):
        g, grads, _ = cell.backward(params, c, g)
        for k in total:
            total[k] += grads[k]
    for name, v in params.items():
        ref = np.empty(v.shape)
        for idx in np.ndindex(v.shape):
            p = {k: a.astype(complex) for k, a in params.items()}
            p[name][idx] += 1e-30j
            ref[idx] = np.sum(w * run(p, state.astype(complex))[0]).imag / 1e-30
        assert rel_err(total[name], ref) <= 1e-10, name
    ref_s = np.empty(state.shape)
    for idx in np.ndindex(state.shape):
        s0 = state.astype(complex)
        s0[idx] += 1e-30j
        ref_s[idx] = np.sum(w * run(params, s0)[0]).imag / 1e-30
    assert rel_err(g, ref_s) <= 1e-10


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
    ("cnn", {}, "cell kind: must be one of cornn, gru, indrnn, lru, lstm, mingru, minlstm, rnn, slstm"),
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


# --- property test over random sizes and options -----------------------------------------
@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["rnn", "gru", "lstm"]), n=st.integers(1, 6), d=st.integers(1, 3),
       seed=st.integers(0, 2**31), flag1=st.booleans(), flag2=st.booleans(),
       gain=st.floats(0.1, 3.0))
def test_property_jacobian_and_vjp(kind, n, d, seed, flag1, flag2, gain):
    opts = {"recurrent_init": {"kind": "gaussian", "gain": gain}}
    if kind == "rnn":
        opts["activation"] = "tanh" if flag1 else "linear"
    elif kind == "gru":
        opts["reset_gate"] = flag1
        opts["reset_after"] = flag1 and flag2
    else:
        opts.update(forget_gate=flag1, output_tanh=flag2)
    cell, params, state, x, rng = setup(kind, opts, n, d, seed % 1000, B=2)
    assert check_jacobian(cell, params, state, x).ok
    _, cache = cell.step(params, state, x)
    M = rng.normal(size=(2, 2 * cell.state_size, cell.state_size))
    assert rel_err(cell.vjp(params, cache, M), M @ cell.jacobian(params, cache)) <= 1e-12
