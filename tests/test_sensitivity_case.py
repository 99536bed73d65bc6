"""probe.sensitivity through a case: the curves.json `sensitivity` items are the pooled numbers
of state_sensitivity, the file is byte-stable, absent when off, and the regression check and
the report read it."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from diagnostics.errors import CaseError
from diagnostics.io import dumps, json_safe
from diagnostics.regression import compare
from diagnostics.report.data import RunData
from diagnostics.report.select_sensitivity import (
    closed_form_kind,
    select_by_lag,
    select_memory,
)
from diagnostics.run.curves import sensitivity_items
from diagnostics.run.runner import compute, probe_stream
from diagnostics.run.spec import resolve
from diagnostics.sensitivity import state_sensitivity


def case(sensitivity=True):
    return {"name": "sens", "seed": 0,
            "task": {"kind": "none", "length": 400, "inputs": "ar1", "rho": 0.5},
            "cells": [{"kind": "rnn", "label": "linear", "hidden": 1, "activation": "linear", "bias": 0.0,
                       "recurrent_init": {"kind": "identity", "gain": 0.9},
                       "input_init": {"kind": "identity", "gain": 1.0}},
                      {"kind": "lru", "label": "lru", "hidden": 1, "r_min": 0.9, "r_max": 0.9, "max_phase": 0.0,
                       "input_init": {"kind": "identity", "gain": float(np.sqrt(0.5))}},
                      {"kind": "lstm", "label": "lstm", "hidden": 2}],
            "probe": {"lags": 30, "sequences": 6, "lyapunov": 1, "tk_map": {"anchors": 0},
                      "anchors": [300, 400], "sensitivity": sensitivity}}


@pytest.fixture(scope="module")
def run():
    spec = resolve(case())
    return spec, compute(spec, show=False)


def test_items_are_the_pooled_measurements(run):
    spec, res = run
    items = res.curves.to_data()["sensitivity"]
    kinds = [(it["cell"], it["kind"], it["parameter"]) for it in items]
    assert kinds == [("linear", "sensitivity", "W_a"), ("linear", "state", None),
                     ("lru", "sensitivity", "nu"), ("lru", "sensitivity", "theta"), ("lru", "state", None),
                     ("lstm", "sensitivity", "W"), ("lstm", "state", None)]
    xs = probe_stream(spec.task, spec.plan, 0)
    cell = spec.cells[1]
    params = cell.init(np.random.default_rng([0, 1, 1]))
    direct = state_sensitivity(cell, params, xs, lags=30, anchors=[300, 400])
    it = next(i for i in items if i["cell"] == "lru" and i["parameter"] == "nu")
    assert it["lags"] == list(range(30)) and it["pairs"] == 12
    v = direct.log10_lag["nu"].reshape(12, 30)
    rms = 0.5 * np.log10(np.mean(10.0 ** (2 * v), axis=0))
    np.testing.assert_allclose(it["log10"]["rms"], rms, rtol=0, atol=1e-12)
    np.testing.assert_allclose(it["log10"]["median"], np.median(v, axis=0), rtol=0, atol=1e-12)
    tot = direct.log10_total["nu"].ravel()
    assert it["total"]["log10"]["rms"] == pytest.approx(0.5 * np.log10(np.mean(10.0 ** (2 * tot))), abs=1e-12)
    assert it["total"]["log10"]["max"] == pytest.approx(tot.max(), abs=0)
    st = next(i for i in items if i["cell"] == "lru" and i["kind"] == "state")
    s = direct.log10_state.ravel()
    assert st["total"]["log10"]["rms"] == pytest.approx(0.5 * np.log10(np.mean(10.0 ** (2 * s))), abs=1e-12)
    assert "log10" not in st and st["pairs"] == 12


def test_same_case_same_bytes_and_off_by_default(run):
    spec, res = run
    again = compute(resolve(case()), show=False)
    assert again.curves.to_json() == res.curves.to_json()
    off = compute(resolve(case(sensitivity=False)), show=False)
    assert "sensitivity" not in off.curves
    on = {k: v for k, v in res.curves.to_data().items() if k != "sensitivity"}
    assert dumps(on) == off.curves.to_json()          # the rest of the file does not move


def test_an_exact_zero_is_null_and_pooling_handles_it():
    class R:
        names, lags = ("W_a",), np.arange(3)
        log10_lag = {"W_a": np.array([[[0.0, -np.inf, np.nan]], [[1.0, -np.inf, 0.0]]])}
        log10_total = {"W_a": np.array([[0.5], [-np.inf]])}
        log10_state = np.array([[0.0], [0.0]])
    it = json_safe(sensitivity_items("c", 0, R())[0])
    assert it["log10"]["median"][1] is None and it["nonfinite"] == [0, 0, 1]
    assert it["log10"]["rms"][0] == pytest.approx(0.5 * np.log10((1 + 100) / 2), abs=1e-15)
    assert it["log10"]["rms"][1] is None and it["log10"]["rms"][2] == pytest.approx(0.0, abs=1e-15)
    assert it["total"]["log10"]["rms"] == pytest.approx(0.5 * np.log10(10.0 / 2), abs=1e-15)


def test_the_regression_check_reads_the_sensitivity(run):
    _, res = run
    base = json.loads(res.curves.to_json())
    assert compare(base, base).ok
    moved = copy.deepcopy(base)
    item = next(i for i in moved["sensitivity"] if i["parameter"] == "W_a")
    item["log10"]["rms"][7] += 0.2
    cmp = compare(moved, base)
    bad = cmp.failing
    assert len(bad) == 1 and bad[0].series == "linear ckpt=0 sensitivity/W_a rms" and bad[0].lag == 7
    moved = copy.deepcopy(base)
    next(i for i in moved["sensitivity"] if i["kind"] == "state")["total"]["log10"]["q25"] -= 0.1
    assert [r.series for r in compare(moved, base).failing] == ["linear ckpt=0 state total q25"]
    gone = {k: v for k, v in base.items() if k != "sensitivity"}
    assert {r.what for r in compare(gone, base).failing} == {"missing"}


def test_the_option_is_a_strict_boolean():
    bad = case()
    bad["probe"]["sensitivity"] = 1
    with pytest.raises(CaseError, match=r"probe\.sensitivity: "):
        resolve(bad)


@pytest.mark.parametrize("kind,opts,want", [
    ("rnn", {"hidden": 1, "activation": "linear", "bias": 0.0, "input_init": {"kind": "identity", "gain": 1.0}}, "linear"),
    ("rnn", {"hidden": 1, "activation": "linear", "bias": 0.1, "input_init": {"kind": "identity", "gain": 1.0}}, None),
    ("rnn", {"hidden": 1, "activation": "tanh", "bias": 0.0, "input_init": {"kind": "identity", "gain": 1.0}}, None),
    ("rnn", {"hidden": 2, "activation": "linear", "bias": 0.0, "input_init": {"kind": "identity", "gain": 1.0}}, None),
    ("lru", {"hidden": 1, "max_phase": 0.0, "normalize": True, "input_init": {"kind": "identity", "gain": 0.5 ** 0.5}}, "lru"),
    ("lru", {"hidden": 1, "max_phase": 0.0, "normalize": False, "input_init": {"kind": "identity", "gain": 0.5 ** 0.5}},
     "lru_unnormalised"),
    ("lru", {"hidden": 1, "max_phase": 0.1, "normalize": True, "input_init": {"kind": "identity", "gain": 0.5 ** 0.5}}, None),
    ("lru", {"hidden": 1, "max_phase": 0.0, "normalize": True, "input_init": {"kind": "gaussian", "gain": 0.5 ** 0.5}}, None),
])
def test_closed_forms_are_drawn_only_where_they_apply(kind, opts, want):
    assert closed_form_kind(kind, opts) == want


def test_the_figures_select_their_data(run):
    spec, res = run
    from diagnostics.run.runinfo import run_document
    d = RunData(json_safe(res.curves), json_safe(run_document(spec, res.summary, {})))
    by_lag = select_by_lag(d)
    assert set(by_lag["panels"]) == {"W_a", "nu", "theta", "W"}
    mem = select_memory(d)
    groups = mem["groups"]
    assert mem["rho"] == 0.5 and set(groups) == {"rnn", "lru", "lstm"}
    assert set(groups["rnn"]["lines"]) == {"W_a", "state"} and groups["lstm"]["lines"] == {}
    assert set(groups["lru"]["lines"]) == {"nu", "theta", "state"}
    assert groups["rnn"]["memory"] == pytest.approx([0.9], abs=1e-12)   # the fitted decay factor
