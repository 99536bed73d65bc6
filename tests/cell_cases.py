"""The built-in cells as the contract tests run them: every registered kind, at its defaults
or at the option combinations listed here, at a few sizes and seeds (shared by test_cells
and test_sensitivity)."""
from __future__ import annotations

import numpy as np

from diagnostics.cells import cell_kinds, make_cell

# option combinations per kind; a kind not listed runs at its defaults, so a new built-in cell
# is covered without editing this
VARIANTS = {
    "rnn": [{"activation": "tanh"}, {"activation": "relu"}, {"activation": "linear"}],
    "gru": [{"reset_gate": True}, {"reset_gate": False, "bias": 0.3},
            {"reset_after": True}, {"reset_after": True, "bias": 0.3}],
    "lstm": [{"forget_gate": fg, "output_tanh": ot, **extra}
             for fg in (True, False) for ot in (True, False)
             for extra in ({"chrono": 20}, {"forget_bias": 2.0, "bias": -0.2})],
    "indrnn": [{"activation": "relu", "recurrent_min": -1.0, "recurrent_max": 1.0},
               {"activation": "tanh"},
               {"activation": "linear", "recurrent_min": 0.5, "recurrent_max": 2.0, "bias": 0.3}],
    "lru": [{}, {"normalize": False, "r_min": 0.2, "r_max": 0.6, "max_phase": 0.5}],
    "mingru": [{}, {"update_bias": -2.0, "bias": 0.4}],
    "minlstm": [{}, {"forget_bias": 3.0, "bias": -1.0}],
    "cornn": [{}, {"dt": 0.3, "gamma": 0.0, "epsilon": 0.5, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}],
    "slstm": [{}, {"forget": "exp", "forget_bias": -0.5},
              {"heads": 2, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}],
}
CONFIGS = [(k, o) for k in cell_kinds() for o in VARIANTS.get(k, [{}])]
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
